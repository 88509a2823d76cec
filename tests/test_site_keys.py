"""Two projects on one Redis database never share a key unless configured to."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from keel.redis import make_key
from keel.site.checks import check_key_prefix

REDIS = "redis://127.0.0.1:6379/0"


def database(name: str, engine: str = "django.db.backends.postgresql", host: str = "db") -> Any:
    return {"default": {"ENGINE": engine, "NAME": name, "HOST": host, "PORT": "5432"}}


def key_of(databases: Any, keel: Any) -> str:
    with override_settings(DATABASES=databases, KEEL=keel):
        return make_key("site", "gen")


def test_two_projects_with_default_settings_never_share_a_key() -> None:
    shop = key_of(database("shop"), {"REDIS_URL": REDIS})
    blog = key_of(database("blog"), {"REDIS_URL": REDIS})
    other_host = key_of(database("shop", host="db2"), {"REDIS_URL": REDIS})
    assert len({shop, blog, other_host}) == 3
    assert shop.startswith("keel-")


def test_every_process_of_one_project_derives_the_same_prefix() -> None:
    assert key_of(database("shop"), {}) == key_of(database("shop"), {"REDIS_URL": REDIS})


def test_an_explicit_prefix_is_used_as_it_is() -> None:
    assert key_of(database("shop"), {"KEY_PREFIX": "shared"}) == "shared:site:gen"
    assert key_of(database("blog"), {"KEY_PREFIX": "shared"}) == "shared:site:gen"


def ids(databases: Any, keel: Any) -> list[str]:
    with override_settings(DATABASES=databases, KEEL=keel):
        return [m.id for m in check_key_prefix()]


@pytest.mark.parametrize(
    ("name", "engine"),
    [
        ("db.sqlite3", "django.db.backends.sqlite3"),
        (":memory:", "django.db.backends.sqlite3"),
        ("", "django.db.backends.postgresql"),
    ],
)
def test_a_derived_prefix_from_an_ambiguous_database_is_a_warning(name: str, engine: str) -> None:
    assert ids(database(name, engine), {"REDIS_URL": REDIS}) == ["keel.W003"]
    # Not ambiguous: an explicit prefix, no Redis, or a database that names itself.
    assert ids(database(name, engine), {"REDIS_URL": REDIS, "KEY_PREFIX": "shop"}) == []
    assert ids(database(name, engine), {}) == []
    assert ids(database("/srv/shop/db.sqlite3", engine), {"REDIS_URL": REDIS}) == []


def test_the_old_shared_default_prefix_is_a_warning() -> None:
    assert ids(database("shop"), {"REDIS_URL": REDIS, "KEY_PREFIX": "keel"}) == ["keel.W004"]
    assert ids(database("shop"), {"KEY_PREFIX": "keel"}) == []
