"""What readers of keel's cached state may see, against real stores, databases and processes.

Each test is one way the shared store used to disagree with the committed database: data read
inside a transaction, a store that lost or rolled back data, a publication that never reached
the store, a damaged document, a database cache that broke the caller's transaction, write
paths that bypassed publishing, a cascade that removed a singleton, and a transaction that
could not read its own writes.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import pytest
from django.apps import apps
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.state import ProjectState
from django.test import TestCase

from keel.redis import make_key, reset_clients
from keel.site import SingletonDeletionError, request_scope
from keel.site.cache import reset_process_state
from tests.conftest import use_server
from tests.reliability import servers
from tests.site.conftest import write_from_another_process
from tests.testapp.models.site import Brand, OwnedSettings, SiteSettings, StaticContent


def as_another_process() -> None:
    """This process forgets everything it knew, as a newly started worker would."""
    reset_process_state()


def drop_generation_keys(site_store: str) -> None:
    """What eviction (Redis) or culling (a Django cache) does to the keys of the versions."""
    label = "{" + SiteSettings._meta.label_lower + "}"
    keys = [make_key("site", label, "gen"), make_key("site", label, "gen", "default")]
    if site_store == "redis":
        from keel.redis import get_redis

        get_redis().delete(*keys)
    else:
        caches["default"].delete_many(keys)


def save_phone(phone: str) -> None:
    row = SiteSettings.objects.get()
    row.phone = phone
    row.save()


# -- 1. nothing read inside a transaction reaches the store --------------------------------


@pytest.mark.django_db(transaction=True)
def test_settings_read_in_a_rolled_back_transaction_never_reach_the_store(site_store: str) -> None:
    save_phone("committed")
    as_another_process()
    caches["default"].clear()
    drop_generation_keys(site_store)  # a cold store

    def save_read_then_fail() -> None:
        with transaction.atomic():
            save_phone("rolled back")
            assert SiteSettings.load().phone == "rolled back"
            raise RuntimeError

    with pytest.raises(RuntimeError):
        save_read_then_fail()

    as_another_process()
    assert SiteSettings.load().phone == "committed"


@pytest.mark.django_db(transaction=True)
def test_content_read_in_a_rolled_back_transaction_never_reaches_the_store(site_store: str) -> None:
    StaticContent.objects.create(key="greeting", content="Hello")
    as_another_process()
    drop_generation_keys(site_store)

    def write_read_then_fail() -> None:
        with transaction.atomic():
            StaticContent.objects.filter(key="greeting").update(content="Uncommitted")
            StaticContent.objects.create(key="extra", content="Uncommitted")
            assert StaticContent.get_content_map()["greeting"] == "Uncommitted"
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write_read_then_fail()

    as_another_process()
    assert StaticContent.get_content_map() == {"greeting": "Hello"}


def _take_snapshot() -> None:
    if connection.vendor in {"postgresql", "mysql"}:
        # Django runs both at READ COMMITTED unless told otherwise; many projects do not.
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    # The first read of the transaction fixes its snapshot (SQLite in WAL mode reads one
    # snapshot per transaction).
    assert SiteSettings.objects.values_list("phone", flat=True).get() == "old"


@pytest.mark.django_db(transaction=True)
def test_a_reader_whose_snapshot_predates_a_commit_never_stores_what_it_read(
    site_store: str,
) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
    save_phone("old")
    snapshot_taken, committed = threading.Event(), threading.Event()
    seen: list[str] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            with transaction.atomic():
                _take_snapshot()
                snapshot_taken.set()
                assert committed.wait(10)
                # The store is cold for this document: the reader builds it from its snapshot.
                seen.append(SiteSettings.load().phone)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=reader)
    thread.start()
    assert snapshot_taken.wait(10)
    save_phone("new")  # commits and publishes while the reader's snapshot is open
    caches["default"].clear()  # the published document is evicted; the version stays
    from keel.redis import get_redis, is_configured

    if is_configured():
        client = get_redis()
        documents = [k for k in client.scan_iter(match=make_key("*")) if b":settings:" in k]
        client.delete(*documents)
    committed.set()
    thread.join(20)
    assert errors == []
    assert seen == ["old"]  # its snapshot, for itself
    as_another_process()
    assert SiteSettings.load().phone == "new"


# -- 2. a store that loses or rolls back data never brings old values back ------------------


@pytest.mark.django_db(transaction=True)
def test_a_flushed_store_then_a_save_elsewhere_never_revives_an_older_copy(
    server: servers.Server, settings: Any
) -> None:
    keel = use_server(settings, server, SITE_SETTINGS_LOCAL_TTL=0)
    save_phone("maintenance")
    assert SiteSettings.load().phone == "maintenance"  # this process keeps a copy
    write_from_another_process(keel, "open")
    server.client().flushdb()
    write_from_another_process(keel, "open again")
    assert SiteSettings.load().phone == "open again"


@pytest.mark.django_db(transaction=True)
def test_a_store_restarted_from_an_older_snapshot_never_serves_it(
    server: servers.Server, started: servers.Processes, settings: Any
) -> None:
    use_server(settings, server)
    save_phone("old")
    assert SiteSettings.load().phone == "old"
    server.client().save()  # an RDB snapshot holding "old"
    save_phone("new")
    server = started.restart(server, keep_files=True)  # comes back with the snapshot
    reset_clients()
    assert server.client().dbsize() > 0
    as_another_process()
    assert SiteSettings.load().phone == "new"


@pytest.mark.django_db(transaction=True)
def test_evicted_versions_never_make_an_old_document_current(site_store: str) -> None:
    from django.utils import translation

    save_phone("first")

    with translation.override("fr"):
        assert SiteSettings.load().phone == "first"  # a French document, in the store
    save_phone("second")
    drop_generation_keys(site_store)  # evicted / culled
    save_phone("third")
    as_another_process()
    with translation.override("fr"):
        assert SiteSettings.load().phone == "third"


# -- 3. a publication that never reached the store is seen anyway --------------------------


@pytest.mark.django_db(transaction=True)
def test_a_save_by_a_process_that_exits_during_a_store_stall_reaches_every_reader(
    server: servers.Server, settings: Any
) -> None:
    bound = 0.5
    keel = use_server(
        settings, server, SITE_SETTINGS_LOCAL_TTL=0.2, SITE_SETTINGS_VERIFY_INTERVAL=bound
    )
    save_phone("before")
    assert SiteSettings.load().phone == "before"
    server.process.send_signal(signal.SIGSTOP)  # Redis stalls: commands time out
    try:
        write_from_another_process(keel, "during the stall")
    finally:
        server.process.send_signal(signal.SIGCONT)
    saved_at = time.monotonic()
    reset_clients()
    deadline = saved_at + bound + 3
    while SiteSettings.load().phone != "during the stall":
        assert time.monotonic() < deadline, "the save was never seen"
        time.sleep(0.05)
    assert time.monotonic() - saved_at <= bound + 1.5
    as_another_process()
    assert SiteSettings.load().phone == "during the stall"


# -- 5. a damaged document is rebuilt ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_current_document_a_field_refuses_is_rebuilt(site_store: str) -> None:
    SiteSettings.objects.update(launched_on="2024-05-01", phone="db")
    assert SiteSettings.load().phone == "db"
    damaged = 0
    if site_store == "redis":
        from keel.redis import get_redis

        client = get_redis()
        for key in client.scan_iter(match=make_key("*")):
            if b"{testapp.sitesettings}:settings:" in key:
                doc = json.loads(client.get(key))
                doc["data"]["launched_on"] = "the 5th of May"
                client.set(key, json.dumps(doc))
                damaged += 1
    else:
        cache = caches["default"]
        for key in list(cache._cache):  # type: ignore[attr-defined]
            raw = cache.get(key.split(":", 2)[2])
            if isinstance(raw, str) and '"launched_on"' in raw:
                doc = json.loads(raw)
                doc["data"]["launched_on"] = "the 5th of May"
                cache.set(key.split(":", 2)[2], json.dumps(doc))
                damaged += 1
    assert damaged == 1
    as_another_process()
    loaded = SiteSettings.load()
    assert loaded.launched_on.isoformat() == "2024-05-01"
    assert loaded.phone == "db"


# -- 6. a failing database cache never breaks the caller's transaction ----------------------


@pytest.mark.django_db(transaction=True)
def test_a_database_cache_without_its_table_never_aborts_the_callers_transaction(
    settings: Any,
) -> None:
    settings.CACHES = {
        **settings.CACHES,
        "no_table": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "keel_createcachetable_never_ran",
        },
    }
    settings.KEEL = {**settings.KEEL, "REDIS_URL": None, "SITE_SETTINGS_CACHE_ALIAS": "no_table"}
    SiteSettings.objects.update(phone="db")
    as_another_process()  # no back-off left from the failed publication
    with transaction.atomic():  # e.g. ATOMIC_REQUESTS
        assert SiteSettings.load().phone == "db"
        assert StaticContent.get_content_map() == {}
        StaticContent.objects.create(key="after", content="still writable")
        assert SiteSettings.objects.count() == 1
    assert StaticContent.objects.get().content == "still writable"


# -- 7. every write path reaches readers -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_base_manager_updates_reach_readers(site_store: str) -> None:
    assert SiteSettings.load().phone == ""
    SiteSettings._base_manager.filter(pk=1).update(phone="base update")
    as_another_process()
    assert SiteSettings.load().phone == "base update"
    row = SiteSettings._base_manager.get()
    row.phone = "bulk update"
    SiteSettings._base_manager.bulk_update([row], ["phone"])
    as_another_process()
    assert SiteSettings.load().phone == "bulk update"
    StaticContent.objects.create(key="k", content="a")
    assert StaticContent.get_content_map() == {"k": "a"}
    StaticContent._base_manager.filter(key="k").update(content="b")
    as_another_process()
    assert StaticContent.get_content_map() == {"k": "b"}


@pytest.mark.django_db(transaction=True)
def test_writes_of_a_data_migration_reach_readers(site_store: str) -> None:
    assert SiteSettings.load().phone == ""
    StaticContent.objects.create(key="k", content="before")
    assert StaticContent.get_content_map() == {"k": "before"}
    # A data migration writes through historical models, which have no keel behaviour.
    historical = ProjectState.from_apps(apps).apps
    settings_model = historical.get_model("testapp", "SiteSettings")
    row = settings_model.objects.get()
    row.phone = "migrated"
    row.save()
    historical.get_model("testapp", "StaticContent").objects.update(content="migrated")
    call_command("migrate", verbosity=0)
    as_another_process()
    assert SiteSettings.load().phone == "migrated"
    assert StaticContent.get_content_map() == {"k": "migrated"}


# -- 8. a singleton never disappears by cascade ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_deleting_the_target_of_a_cascading_key_is_refused_and_the_singleton_kept() -> None:
    owner = Brand.objects.create(name="owner")
    OwnedSettings.objects.update(owner=owner, motto="kept")
    with pytest.raises(SingletonDeletionError, match="OwnedSettings"):
        owner.delete()
    with pytest.raises(SingletonDeletionError):
        Brand.objects.all().delete()
    assert OwnedSettings.objects.get().motto == "kept"
    assert Brand.objects.filter(pk=owner.pk).exists()
    assert OwnedSettings.load().motto == "kept"


# -- 11. a transaction reads its own writes ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_transaction_reads_its_own_writes(site_store: str) -> None:
    save_phone("before")
    assert SiteSettings.load().phone == "before"  # warm: store and process copy
    StaticContent.objects.create(key="k", content="before")
    assert StaticContent.get_content_map() == {"k": "before"}
    with transaction.atomic():
        save_phone("inside")
        assert SiteSettings.load().phone == "inside"
        StaticContent.objects.update(content="inside")
        assert StaticContent.get_content_map() == {"k": "inside"}
    assert SiteSettings.load().phone == "inside"
    assert StaticContent.get_content_map() == {"k": "inside"}


@pytest.mark.django_db(transaction=True)
def test_a_request_under_atomic_requests_reads_its_own_writes(site_store: str) -> None:
    save_phone("before")
    with request_scope(), transaction.atomic():
        assert SiteSettings.load().phone == "before"  # memoised for the request
        save_phone("inside")
        assert SiteSettings.load().phone == "inside"
    assert SiteSettings.load().phone == "inside"


class TestCaseReadsItsOwnWrites(TestCase):
    """A ``TestCase`` test runs in a transaction that never commits."""

    databases = {"default"}

    def test_save_then_load(self) -> None:
        SiteSettings.load()
        save_phone("in a test")
        assert SiteSettings.load().phone == "in a test"

    def test_the_next_test_sees_the_rolled_back_value(self) -> None:
        assert SiteSettings.load().phone == ""


# -- the hook for writers that bypass the ORM ---------------------------------------------------


def _raw_phone(phone: str) -> None:
    table = connection.ops.quote_name(SiteSettings._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET phone = %s", [phone])


@pytest.mark.django_db(transaction=True)
def test_refresh_readers_after_a_set_based_write_commits_with_it(site_store: str) -> None:
    from keel.site.receivers import refresh_readers

    save_phone("before")
    assert SiteSettings.load().phone == "before"

    def write_then_fail() -> None:
        with transaction.atomic():
            _raw_phone("rolled back")
            assert refresh_readers(SiteSettings, using="default") is True
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write_then_fail()
    as_another_process()
    assert SiteSettings.load().phone == "before"
    with transaction.atomic():
        _raw_phone("bulk")
        refresh_readers(SiteSettings, using="default")
    as_another_process()
    assert SiteSettings.load().phone == "bulk"
    assert refresh_readers(Brand, using="default") is False  # not cached: nothing to do


@pytest.mark.django_db(transaction=True)
def test_a_new_version_row_starts_at_a_random_number() -> None:
    from keel.models import SiteVersion
    from keel.site.versions import FIRST_VERSIONS, increment

    SiteVersion.objects.all().delete()
    increment(SiteSettings, "default")
    increment(StaticContent, "default")
    first = dict(SiteVersion.objects.values_list("label", "version"))
    assert len(set(first.values())) == 2
    assert all(1 <= v <= FIRST_VERSIONS for v in first.values())
    increment(SiteSettings, "default")
    assert SiteVersion.objects.get(label="testapp.sitesettings").version == (
        first["testapp.sitesettings"] + 1
    )
