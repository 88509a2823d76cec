from __future__ import annotations

import sys
from io import StringIO

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from keel.checks import check_settings
from tests.conftest import require_service
from tests.reliability import servers


def ids(keel: object, **settings: object) -> list[str]:
    with override_settings(KEEL=keel, **settings):
        return [message.id for message in check_settings()]


def test_valid_settings_pass() -> None:
    assert ids({"REDIS_URL": "redis://127.0.0.1:6379/0", "KEY_PREFIX": "site"}) == []


def test_e001_keel_not_a_dict() -> None:
    assert ids(["REDIS_URL"]) == ["keel.E001"]


def test_e002_bad_redis_url() -> None:
    assert ids({"REDIS_URL": "localhost:6379"}) == ["keel.E002"]


@pytest.mark.parametrize(
    "name",
    ["TOKEN_DEFAULT_TTL", "TOKEN_MAX_TTL", "SITE_SETTINGS_CACHE_TIMEOUT", "FIXTURE_BATCH_SIZE"],
)
def test_e003_non_positive_numbers(name: str) -> None:
    assert ids({"REDIS_URL": "redis://x", name: 0}) == ["keel.E003"]
    assert ids({"REDIS_URL": "redis://x", name: -5}) == ["keel.E003"]


def test_e004_wrong_type_or_choice() -> None:
    assert ids({"REDIS_URL": "redis://x", "TOKEN_STORE": "memory"}) == ["keel.E004"]
    assert ids({"REDIS_URL": "redis://x", "REDIS_OPTIONS": "timeout=1"}) == ["keel.E004"]


def test_e005_redis_configured_without_redis_py(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules is how Python spells "this package is not installed".
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert ids({"REDIS_URL": "redis://x"}) == ["keel.E005"]


def test_e006_redis_token_store_without_redis_url() -> None:
    assert ids({"TOKEN_STORE": "redis"}, CACHES=_SHARED_CACHE) == ["keel.E006"]


def test_e007_unknown_cache_alias() -> None:
    assert ids({"REDIS_URL": "redis://x", "SITE_SETTINGS_CACHE_ALIAS": "nope"}) == ["keel.E007"]


def test_w001_unknown_key_suggests_the_right_one() -> None:
    with override_settings(KEEL={"REDIS_URL": "redis://x", "REDIS_ULR": "x"}):
        [message] = check_settings()
    assert message.id == "keel.W001"
    assert "REDIS_ULR" in message.msg
    assert message.hint == "Did you mean 'REDIS_URL'?"


_SHARED_CACHE = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache"}}


def test_w002_locmem_cache_without_redis() -> None:
    assert ids({}) == ["keel.W002"]
    assert ids({}, CACHES=_SHARED_CACHE) == []
    assert ids({"REDIS_URL": "redis://x"}) == []


# Django 6.1 runs the database checks in `check` too: MySQL's connect to the server.
@pytest.mark.django_db(databases=["default", "other"])
def test_manage_py_check_fails_with_id_and_key() -> None:
    with (
        override_settings(KEEL={"REDIS_URL": "redis://x", "TOKEN_MAX_TTL": -1}),
        pytest.raises(SystemCheckError) as info,
    ):
        call_command("check", stdout=StringIO(), stderr=StringIO())
    assert "keel.E003" in str(info.value)
    assert "KEEL['TOKEN_MAX_TTL']" in str(info.value)


def test_e008_a_cached_field_that_cannot_be_published() -> None:
    from django.test.utils import isolate_apps

    from keel.site.checks import check_cached_fields
    from tests.test_site_fields import PointField

    with isolate_apps("tests.testapp"):
        from keel.site.models import SiteSettingsSyncMixin

        class PointSettings(SiteSettingsSyncMixin):
            where = PointField(null=True)

            class Meta:
                app_label = "testapp"

        from keel.site import registry

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(registry, "cached_models", lambda: (PointSettings,))
            assert [m.id for m in check_cached_fields()] == ["keel.E008"]


def test_w003_derived_key_prefix_from_a_relative_sqlite_path() -> None:
    from keel.site.checks import check_key_prefix

    databases = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
    with override_settings(DATABASES=databases, KEEL={"REDIS_URL": "redis://127.0.0.1:6379/0"}):
        assert [m.id for m in check_key_prefix()] == ["keel.W003"]


def test_w004_the_old_shared_key_prefix() -> None:
    from keel.site.checks import check_key_prefix

    keel = {"REDIS_URL": "redis://127.0.0.1:6379/0", "KEY_PREFIX": "keel"}
    with override_settings(KEEL=keel):
        assert [m.id for m in check_key_prefix()] == ["keel.W004"]


@pytest.mark.parametrize(
    ("renamed", "reason"),
    [("HELLO", "does not speak RESP3"), ("CLIENT", "refused CLIENT TRACKING")],
)
def test_w005_redis_refusing_client_tracking(renamed: str, reason: str) -> None:
    problem = servers.binaries_problem()
    if problem:
        require_service("redis-server", problem)
    with servers.processes() as started:
        # Redis before 6 has no HELLO; rename-command (or a proxy) can hide CLIENT.
        refusing = started.start("--rename-command", renamed, "")
        tracking = started.start()
        for server, expected in ((refusing, [reason]), (tracking, [])):
            keel = {"REDIS_URL": f"redis://127.0.0.1:{server.port}/0"}
            with override_settings(KEEL=keel):
                messages = checks.run_checks(include_deployment_checks=True)
                w005 = [m.msg for m in messages if m.id == "keel.W005"]
                assert len(w005) == len(expected)
                assert all(r in w005[0] for r in expected)
                with override_settings(KEEL={**keel, "SITE_SETTINGS_TRACKING": False}):
                    silenced = checks.run_checks(include_deployment_checks=True)
                    assert [m for m in silenced if m.id == "keel.W005"] == []
        # Not a deployment check run: no connection to Redis, no W005.
        with override_settings(KEEL={"REDIS_URL": f"redis://127.0.0.1:{refusing.port}/0"}):
            assert [m for m in checks.run_checks() if m.id == "keel.W005"] == []
