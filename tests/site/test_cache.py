"""The read and publish paths of keel.site's cache, against a real Redis and databases."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from keel.redis import get_redis, make_key
from keel.signals import fixture_imported
from keel.site import versions
from keel.site.cache import get_store, request_scope, reset_process_state
from keel.site.codec import schema_id
from keel.site.stores import Write
from tests.site.conftest import CountingConnection, round_trips, start_reader
from tests.testapp.models.site import BookingSettings, SiteSettings, StaticContent


def settings_doc_key(language: str = "en", alias: str = "default") -> str:
    label = SiteSettings._meta.label_lower
    return make_key("site", "{" + label + "}", "settings", schema_id(SiteSettings), alias, language)


def gen_key(model: Any = SiteSettings, alias: str = "default") -> str:
    return make_key("site", "{" + model._meta.label_lower + "}", "gen", alias)


def set_phone_behind_keels_back(phone: str, using: str = "default") -> None:
    """A write that keel cannot see (raw SQL)."""
    connection = connections[using]
    table = connection.ops.quote_name(SiteSettings._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET phone = %s", [phone])


def publish_from_another_process(phone: str) -> None:
    """What another process's save leaves behind: the row, its version bumped in the
    database, the store's version moved (this process's copies untouched)."""
    set_phone_behind_keels_back(phone)
    versions.increment(SiteSettings, "default")
    version = versions.committed_versions("default")["testapp.sitesettings"]
    get_store().set(Write(gen_key(), gen_key(), version, "", 1), force=True)


# -- the read path --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_load_returns_a_model_instance_whose_methods_work(keel_redis: redis.Redis) -> None:
    SiteSettings.objects.update(site_name="Acme", tagline="Tools")
    settings = SiteSettings.load()
    assert isinstance(settings, SiteSettings)
    assert settings.site_title() == "Acme: Tools"
    assert settings.pk == 1


@pytest.mark.django_db(transaction=True)
def test_load_creates_the_row_when_absent(keel_redis: redis.Redis) -> None:
    SiteSettings._base_manager.all()._raw_delete(using="default")
    assert SiteSettings.load().site_name == "keel"
    assert SiteSettings.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_warm_store_serves_reads_with_one_command_and_no_sql(
    store_reads: type[CountingConnection],
) -> None:
    SiteSettings.objects.update(phone="+1 555")
    SiteSettings.load()  # warm
    with round_trips() as queries:
        assert SiteSettings.load().phone == "+1 555"
    assert store_reads.commands == ["EVALSHA"]
    assert len(queries) == 0


@pytest.mark.django_db(transaction=True)
def test_fifty_attribute_reads_in_a_request_cost_one_command_and_no_sql(
    store_reads: type[CountingConnection],
) -> None:
    SiteSettings.load()  # warm the store
    names = [f.attname for f in SiteSettings._meta.concrete_fields if not getattr(f, "secret", 0)]
    assert len(names) >= 50
    with round_trips() as queries, request_scope():
        values = [getattr(SiteSettings.load(), name) for name in names[:50]]
    assert len(values) == 50
    assert len(store_reads.commands) <= 1
    assert len(queries) == 0


@pytest.mark.django_db(transaction=True)
def test_without_tracking_the_process_copy_answers_without_any_round_trip_inside_its_window(
    counted_redis: type[CountingConnection], settings: Any
) -> None:
    settings.KEEL = {
        **settings.KEEL,
        "SITE_SETTINGS_LOCAL_TTL": 60,
        "SITE_SETTINGS_TRACKING": False,
    }
    SiteSettings.load()
    with round_trips() as queries:
        for _ in range(20):
            SiteSettings.load()
    assert counted_redis.commands == []
    assert len(queries) == 0


@pytest.mark.django_db(transaction=True)
def test_an_expired_copy_is_renewed_without_the_document_when_nothing_changed(
    store_reads: type[CountingConnection],
) -> None:
    SiteSettings.objects.update(phone="current")
    SiteSettings.load()
    get_redis().delete(settings_doc_key())  # were the document needed, it would be rebuilt
    with round_trips() as queries:
        assert SiteSettings.load().phone == "current"
    assert store_reads.commands == ["EVALSHA"]
    assert len(queries) == 0
    assert get_redis().get(settings_doc_key()) is None


@pytest.mark.django_db(transaction=True)
def test_each_load_outside_a_request_is_a_private_copy(keel_redis: redis.Redis) -> None:
    SiteSettings.objects.update(extra_config={"menu": ["a"]})
    first = SiteSettings.load()
    first.site_name = "changed but not saved"
    first.extra_config["menu"].append("b")
    second = SiteSettings.load()
    assert second.site_name == "keel"
    assert second.extra_config == {"menu": ["a"]}


@pytest.mark.django_db(transaction=True)
def test_a_request_scope_returns_the_same_object_for_every_load(keel_redis: redis.Redis) -> None:
    with request_scope():
        assert SiteSettings.load() is SiteSettings.load()
    assert SiteSettings.load() is not SiteSettings.load()


@pytest.mark.django_db(transaction=True)
def test_without_tracking_the_process_copy_expires_after_the_local_ttl(
    keel_redis: redis.Redis, settings: Any, clock: ModuleType
) -> None:
    settings.KEEL = {
        **settings.KEEL,
        "SITE_SETTINGS_LOCAL_TTL": 0.3,
        "SITE_SETTINGS_TRACKING": False,
    }
    SiteSettings.load()
    SiteSettings.objects.update(phone="new")  # publishes, but from this process
    assert SiteSettings.load().phone == "new"  # the writer's process forgets its copy at once
    publish_from_another_process("newer")
    assert SiteSettings.load().phone == "new"  # still inside the window
    clock.advance(0.35)
    assert SiteSettings.load().phone == "newer"


@pytest.mark.django_db(transaction=True)
def test_documents_are_json_with_a_generation_and_never_pickle(keel_redis: redis.Redis) -> None:
    SiteSettings.objects.update(phone="1", latitude="48.858400", launched_on="2024-05-01")
    raw = keel_redis.get(settings_doc_key())
    assert raw is not None
    doc = json.loads(raw)
    assert doc["format"] == 1
    assert doc["model"] == "testapp.sitesettings"
    assert doc["gen"] == int(keel_redis.get(gen_key()))
    assert doc["gen"] == versions.committed_versions("default")["testapp.sitesettings"]
    assert doc["data"]["latitude"] == "48.858400"
    assert doc["data"]["launched_on"] == "2024-05-01"


@pytest.mark.django_db(transaction=True)
def test_cached_values_keep_their_python_types(store_redis: redis.Redis) -> None:
    SiteSettings.objects.update(
        maintenance_mode=False, latitude="1.500000", launched_on="2024-05-01"
    )
    SiteSettings.load()
    cached = SiteSettings.load()  # from the document
    assert cached.maintenance_mode is False  # not the string "0", which a template finds true
    assert str(cached.latitude) == "1.500000"
    assert cached.launched_on.isoformat() == "2024-05-01"
    assert cached.updated_at.tzinfo is not None


@pytest.mark.django_db(transaction=True)
def test_a_damaged_document_is_rebuilt_from_the_database(store_redis: redis.Redis) -> None:
    SiteSettings.objects.update(phone="db")
    SiteSettings.load()
    for damaged in (b"not json", b"[]", b'{"format": 1}', json.dumps({"format": 99}).encode()):
        store_redis.set(settings_doc_key(), damaged)
        reset_process_state()  # this process has no copy to fall back on
        assert SiteSettings.load().phone == "db"
        assert json.loads(store_redis.get(settings_doc_key()))["data"]["phone"] == "db"


@pytest.mark.django_db(transaction=True)
def test_a_document_of_another_field_layout_is_never_read(keel_redis: redis.Redis) -> None:
    # Fields removed from the model cannot linger: the layout digest is part of the key.
    assert schema_id(SiteSettings) in settings_doc_key()
    assert schema_id(SiteSettings) != schema_id(BookingSettings)


@pytest.mark.django_db(transaction=True)
def test_two_singleton_models_never_share_a_key(keel_redis: redis.Redis) -> None:
    SiteSettings.objects.update(site_name="site")
    BookingSettings.objects.update(slot_minutes=45)
    BookingSettings.clear_cache()
    assert SiteSettings.load().site_name == "site"
    assert BookingSettings.load().slot_minutes == 45
    keys = {k.decode() for k in keel_redis.keys(django_settings.TEST_KEY_PREFIX + "*")}
    assert any("{testapp.bookingsettings}" in k for k in keys)
    assert any("{testapp.sitesettings}" in k for k in keys)


@pytest.mark.django_db(transaction=True)
def test_a_slow_reader_cannot_overwrite_a_newer_publication(store_redis: redis.Redis) -> None:
    SiteSettings.objects.update(phone="old")
    store_redis.delete(settings_doc_key())
    source = SiteSettings._source()
    original_build = source.build
    entered, release = threading.Event(), threading.Event()

    def slow_build(*args: Any) -> Any:
        result = original_build(*args)  # reads "old"
        entered.set()
        release.wait(5)
        return result

    source.build = slow_build  # type: ignore[method-assign]
    try:
        reader = threading.Thread(target=SiteSettings.load)
        reader.start()
        assert entered.wait(5)
        source.build = original_build  # type: ignore[method-assign]
        SiteSettings.objects.update(phone="new")  # commits and publishes while the reader waits
        release.set()
        reader.join(5)
    finally:
        source.build = original_build  # type: ignore[method-assign]
    doc = json.loads(store_redis.get(settings_doc_key()))
    assert doc["data"]["phone"] == "new"
    reset_process_state()
    assert SiteSettings.load().phone == "new"


@pytest.mark.django_db(transaction=True)
def test_aload_reads_through_the_same_layers(keel_redis: redis.Redis) -> None:
    import asyncio

    SiteSettings.objects.update(phone="async")

    async def main() -> tuple[str, str]:
        first = await SiteSettings.aload()
        reset_process_state()
        second = await SiteSettings.aload()  # from Redis, through the asyncio client
        return first.phone, second.phone

    assert asyncio.run(main()) == ("async", "async")


# -- the publish path -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_save_publishes_nothing(keel_redis: redis.Redis) -> None:
    SiteSettings.objects.update(phone="committed")
    before = (keel_redis.get(gen_key()), keel_redis.get(settings_doc_key()))

    def save_then_fail() -> None:
        with transaction.atomic():
            settings = SiteSettings.load()
            settings.phone = "rolled back"
            settings.save()
            raise RuntimeError

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert (keel_redis.get(gen_key()), keel_redis.get(settings_doc_key())) == before
    reset_process_state()
    assert SiteSettings.load().phone == "committed"


@pytest.mark.django_db(transaction=True)
def test_a_save_rolled_back_to_a_savepoint_still_lets_the_next_save_publish(
    keel_redis: redis.Redis,
) -> None:
    with transaction.atomic():
        try:
            with transaction.atomic():
                SiteSettings.objects.update(phone="inner")
                raise RuntimeError
        except RuntimeError:
            pass
        settings = SiteSettings.objects.get()
        settings.phone = "outer"
        settings.save()
    reset_process_state()
    assert SiteSettings.load().phone == "outer"


@pytest.mark.django_db(transaction=True)
def test_several_saves_in_one_transaction_publish_once_on_commit(
    counted_redis: type[CountingConnection],
) -> None:
    with transaction.atomic():
        for phone in ("1", "2", "3"):
            settings = SiteSettings.objects.get()
            settings.phone = phone
            settings.save(update_fields=["phone"])
        assert counted_redis.commands == []  # nothing before the commit
    assert counted_redis.commands == ["EVALSHA"]  # the version and the document, at once
    assert SiteSettings.load().phone == "3"


@pytest.mark.django_db(transaction=True)
def test_a_save_with_update_fields_writes_redis_once(
    counted_redis: type[CountingConnection],
) -> None:
    # What the singleton fixture command does: one script sets the version and the document.
    settings = SiteSettings.objects.get()
    settings.phone = "fixture"
    settings.save(update_fields=["phone"])
    assert counted_redis.commands == ["EVALSHA"]
    assert SiteSettings.objects.get().updated_at >= settings.updated_at


@pytest.mark.django_db(transaction=True)
def test_queryset_update_refreshes_the_cache(keel_redis: redis.Redis) -> None:
    assert SiteSettings.load().phone == ""
    SiteSettings.objects.update(phone="updated")
    assert SiteSettings.load().phone == "updated"
    assert json.loads(keel_redis.get(settings_doc_key()))["data"]["phone"] == "updated"


@pytest.mark.django_db(transaction=True)
def test_a_fixture_import_signal_refreshes_the_cache(keel_redis: redis.Redis) -> None:
    assert SiteSettings.load().phone == ""
    set_phone_behind_keels_back("imported")
    assert SiteSettings.load().phone == ""  # keel could not know
    fixture_imported.send(sender=SiteSettings, using="default", result=None)
    assert SiteSettings.load().phone == "imported"


@pytest.mark.django_db(transaction=True)
def test_loaddata_refreshes_the_cache(keel_redis: redis.Redis, tmp_path: Path) -> None:
    assert SiteSettings.load().phone == ""
    fixture = tmp_path / "settings.json"
    row = {
        "site_name": "loaded",
        "phone": "from loaddata",
        "public_id": str(SiteSettings.load().public_id),
        "updated_at": "2025-01-01T00:00:00Z",  # raw saves skip auto_now
    }
    fixture.write_text(json.dumps([{"model": "testapp.sitesettings", "pk": 1, "fields": row}]))
    call_command("loaddata", str(fixture), verbosity=0)
    assert SiteSettings.load().phone == "from loaddata"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("refresh", ["publish", "clear_cache"])
def test_publish_or_clear_cache_after_raw_sql_refreshes_every_copy(
    keel_redis: redis.Redis, refresh: str
) -> None:
    SiteSettings.load()
    set_phone_behind_keels_back(f"after {refresh}")
    getattr(SiteSettings, refresh)()
    assert SiteSettings.load().phone == f"after {refresh}"


@pytest.mark.django_db(transaction=True)
def test_keel_reuses_one_connection_for_many_operations(
    store_reads: type[CountingConnection],
) -> None:
    for phone in ("1", "2", "3"):
        SiteSettings.objects.update(phone=phone)
        SiteSettings.load()
        StaticContent.get_content_map()
    assert len(store_reads.commands) > 10
    assert store_reads.connects == 0


# -- Redis outages --------------------------------------------------------------------------


DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_redis_neither_fails_a_save_nor_blanks_a_read(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": DEAD_REDIS}
    with caplog.at_level(logging.WARNING, logger="keel.redis"):
        settings_row = SiteSettings.objects.get()
        settings_row.phone = "saved without redis"
        settings_row.save()
        assert SiteSettings.objects.get().phone == "saved without redis"
        reset_process_state()
        assert SiteSettings.load().phone == "saved without redis"
    assert "Redis unavailable" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_redis_does_not_roll_back_the_surrounding_transaction(
    settings: Any,
) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": DEAD_REDIS}
    with transaction.atomic():
        SiteSettings.objects.update(phone="kept")
        StaticContent.objects.create(key="k", content="kept too")
    assert SiteSettings.objects.get().phone == "kept"
    assert StaticContent.objects.get().content == "kept too"


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A throwaway redis-server of this test (stopped by the test to simulate an outage)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    yield url, process
    process.kill()
    process.wait()


@pytest.mark.django_db(transaction=True)
def test_a_redis_server_that_stops_neither_fails_a_save_nor_blanks_a_read(
    own_redis_server: tuple[str, subprocess.Popen[bytes]], settings: Any
) -> None:
    url, process = own_redis_server
    settings.KEEL = {**settings.KEEL, "REDIS_URL": url, "SITE_SETTINGS_LOCAL_TTL": 0}
    SiteSettings.objects.update(phone="before")
    assert SiteSettings.load().phone == "before"  # warm, through the server
    process.kill()
    process.wait()
    settings_row = SiteSettings.objects.get()
    settings_row.phone = "during the outage"
    settings_row.save()
    assert SiteSettings.load().phone == "during the outage"
    assert StaticContent.get_content_map() == {}


@pytest.mark.django_db(transaction=True)
def test_a_publication_lost_in_an_outage_is_repaired_by_the_next_reader(
    store_redis: redis.Redis, settings: Any
) -> None:
    SiteSettings.objects.update(phone="before")
    SiteSettings.load()
    good_url = settings.KEEL["REDIS_URL"]
    settings.KEEL = {**settings.KEEL, "REDIS_URL": DEAD_REDIS}
    SiteSettings.objects.update(phone="during")  # the publication fails
    settings.KEEL = {**settings.KEEL, "REDIS_URL": good_url}  # a fresh process state
    assert json.loads(store_redis.get(settings_doc_key()))["data"]["phone"] == "before"
    assert SiteSettings.load().phone == "during"  # the store is behind the database
    assert json.loads(store_redis.get(settings_doc_key()))["data"]["phone"] == "during"


# -- without Redis: a Django cache takes its place ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_without_redis_the_django_cache_is_the_shared_store(settings: Any) -> None:
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    SiteSettings.objects.update(phone="cached")
    SiteSettings.load()
    with CaptureQueriesContext(connection) as queries:
        assert SiteSettings.load().phone == "cached"
    assert len(queries) == 0
    set_phone_behind_keels_back("hidden")
    assert SiteSettings.load().phone == "cached"
    SiteSettings.publish()
    assert SiteSettings.load().phone == "hidden"


@pytest.mark.django_db(transaction=True)
def test_without_redis_a_failing_cache_falls_back_to_the_database(settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "broken": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": DEAD_REDIS,
        },
    }
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_CACHE_ALIAS": "broken"}
    SiteSettings.objects.update(phone="db")
    assert SiteSettings.load().phone == "db"


# -- two processes --------------------------------------------------------------------------

READ_UNTIL_STOP = """
    last = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        phone = SiteSettings.load().phone
        if phone != last:
            print(phone, flush=True)
            last = phone
            if phone == "stop":
                break
        time.sleep(0.01)
"""


def _assert_change_seen_within(keel: dict[str, Any], window: float) -> None:
    SiteSettings.objects.update(phone="first")
    reader = start_reader(READ_UNTIL_STOP, keel)
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "first"
        changed_at = time.monotonic()
        SiteSettings.objects.update(phone="second")
        assert reader.stdout.readline().strip() == "second"
        elapsed = time.monotonic() - changed_at
        SiteSettings.objects.update(phone="stop")
        assert reader.stdout.readline().strip() == "stop"
    finally:
        reader.kill()
        reader.wait()
    assert elapsed <= window + 0.5, f"seen after {elapsed:.2f}s, window {window}s"


@pytest.mark.django_db(transaction=True)
def test_without_tracking_another_process_sees_a_change_within_the_local_window(
    keel_redis: redis.Redis, settings: Any
) -> None:
    keel = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 1, "SITE_SETTINGS_TRACKING": False}
    settings.KEEL = keel
    _assert_change_seen_within(keel, 1)


@pytest.mark.django_db(transaction=True)
def test_another_process_sees_a_change_through_a_shared_django_cache(settings: Any) -> None:
    caches["keel_shared"].clear()
    keel = {
        **settings.KEEL,
        "SITE_SETTINGS_LOCAL_TTL": 1,
        "SITE_SETTINGS_CACHE_ALIAS": "keel_shared",
    }
    settings.KEEL = keel
    try:
        _assert_change_seen_within(keel, 1)
    finally:
        caches["keel_shared"].clear()
