from __future__ import annotations

import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from keel.checks import check_settings


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
