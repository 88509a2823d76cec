from __future__ import annotations

import sys
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings

from keel.checks import check_cache_table, check_middleware, check_settings
from keel.site.middleware import MaintenanceModeMiddleware
from tests.conftest import redis_processes, use_server
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


def test_w002_only_when_a_cached_site_model_is_installed() -> None:
    apps_without_site_models = [a for a in settings.INSTALLED_APPS if a != "tests.testapp"]
    with override_settings(INSTALLED_APPS=apps_without_site_models):
        assert ids({}) == []
    assert ids({}) == ["keel.W002"]


_AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
_MAINTENANCE = "keel.site.middleware.MaintenanceModeMiddleware"


def _middleware_ids(middleware: list[str]) -> list[str]:
    with override_settings(MIDDLEWARE=middleware):
        return [message.id for message in check_middleware()]


def test_e013_maintenance_mode_before_authentication() -> None:
    sessions = "django.contrib.sessions.middleware.SessionMiddleware"
    assert _middleware_ids([sessions, _AUTH, _MAINTENANCE]) == []
    assert _middleware_ids([sessions, _MAINTENANCE, _AUTH]) == ["keel.E013"]
    assert _middleware_ids([sessions, _MAINTENANCE]) == ["keel.E013"]
    assert _middleware_ids([sessions, _AUTH]) == []
    with override_settings(MIDDLEWARE=[_MAINTENANCE, _AUTH]):
        [message] = check_middleware()
    assert "AuthenticationMiddleware comes after it" in message.msg
    assert message.hint is not None and _AUTH in message.hint


def test_e013_sees_subclasses_of_the_maintenance_middleware() -> None:
    subclass = "tests.test_checks.ShopMaintenance"
    assert _middleware_ids([subclass, _AUTH]) == ["keel.E013"]
    assert _middleware_ids([_AUTH, subclass]) == []


class ShopMaintenance(MaintenanceModeMiddleware):
    exempt_path_prefixes = ("/health/",)


_DATABASE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "keel_check_cache_table",
    }
}


@pytest.mark.django_db(transaction=True)
def test_w010_missing_database_cache_table_names_the_command() -> None:
    with override_settings(CACHES=_DATABASE_CACHE, KEEL={}):
        [message] = check_cache_table(databases=["default"])
        assert message.id == "keel.W010"
        assert "'keel_check_cache_table'" in message.msg
        assert message.hint == "Run: python manage.py createcachetable"
        assert check_cache_table(databases=None) == []
        with override_settings(KEEL={"REDIS_URL": "redis://x"}):
            assert check_cache_table(databases=["default"]) == []
        call_command("createcachetable", database="default", stdout=StringIO())
        try:
            assert check_cache_table(databases=["default"]) == []
        finally:
            with connection.schema_editor() as editor:
                editor.execute(f"DROP TABLE {connection.ops.quote_name('keel_check_cache_table')}")


# -- deployment checks of the Redis token store, against real servers --------------------------


def deploy_ids() -> list[str]:
    from keel.tokens.checks import check_token_persistence

    return [message.id for message in check_token_persistence()]


def test_w008_redis_without_an_always_synced_append_only_file(
    started: servers.Processes, settings: Any
) -> None:
    server = started.start()  # snapshots only, as Redis ships
    use_server(settings, server)
    assert deploy_ids() == ["keel.W008"]
    assert "keel.W008" in {m.id for m in run_checks(include_deployment_checks=True)}
    assert "keel.W008" not in {m.id for m in run_checks()}  # it talks to Redis: deploy only
    # An ACL user refused CONFIG: keel cannot tell, and says nothing.
    server.client().execute_command(
        "ACL", "SETUSER", "app", "on", "nopass", "~*", "&*", "+@all", "-config"
    )
    settings.KEEL = {**settings.KEEL, "REDIS_URL": f"redis://app:x@127.0.0.1:{server.port}/0"}
    assert deploy_ids() == []
    use_server(settings, started.start("--appendonly", "yes", "--appendfsync", "always"))
    assert deploy_ids() == []
    use_server(settings, started.start("--appendonly", "yes", "--appendfsync", "everysec"))
    assert deploy_ids() == ["keel.W008"]
    use_server(settings, server, TOKEN_STORE="database")
    assert deploy_ids() == []


def test_w009_redis_with_asynchronous_replicas(started: servers.Processes, settings: Any) -> None:
    durable = ("--appendonly", "yes", "--appendfsync", "always")
    master = started.start(*durable)
    use_server(settings, master)
    assert deploy_ids() == []
    started.start(*durable, "--replicaof", "127.0.0.1", str(master.port))
    servers.wait_for(
        lambda: master.client().info("replication")["connected_slaves"] == 1, 20, "the replica"
    )
    assert deploy_ids() == ["keel.W009"]


def test_e008_a_cached_field_that_cannot_be_published() -> None:
    from django.test.utils import isolate_apps

    from keel.site.checks import check_cached_fields
    from tests.site.test_codec_fields import PointField

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
    with redis_processes() as started:
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


@pytest.mark.django_db
def test_w007_state_machine_admin_without_the_mixin() -> None:
    """keel.W007: a plain ModelAdmin offers every state and turns a refusal into a 500."""
    from django.contrib import admin
    from django.core import checks

    from keel.admin import check_state_machine_admins
    from tests.testapp.models.mixins_core import Task

    assert check_state_machine_admins() == []  # the test project's admins use the mixin
    admin.site.register(Task, admin.ModelAdmin)
    try:
        (warning,) = check_state_machine_admins()
        assert warning.id == "keel.W007"
        assert "testapp.Task" in warning.msg
        assert "keel.W007" in [m.id for m in checks.run_checks(tags=[checks.Tags.admin])]
    finally:
        admin.site.unregister(Task)


def test_w011_django_outside_the_releases_compat_was_checked_against(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keel import compat

    assert [m for m in run_checks() if m.id == "keel.W011"] == []
    monkeypatch.setattr(compat, "DJANGO_VERSION", (9, 9))
    [warning] = [m for m in run_checks() if m.id == "keel.W011"]
    assert warning.level == checks.WARNING
    assert "Django 5.2, 6.0, 6.1" in warning.msg and "9.9" in warning.msg
