"""Two projects on one Redis database never share a key unless configured to."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import override_settings

from keel.redis import make_key
from keel.site.checks import check_key_prefix
from tests.docs_examples import DOCS

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


def with_options(options: dict[str, Any], engine: str = "django.db.backends.postgresql") -> Any:
    databases = database("shop", engine)
    databases["default"]["OPTIONS"] = options
    return databases


def test_two_schemas_of_one_postgresql_database_never_share_a_key() -> None:
    keys = {
        key_of(with_options({"options": f"-c search_path={schema}"}), {})
        for schema in ("shop", "blog")
    }
    assert len(keys) == 2
    # Every spelling libpq accepts names the same schema.
    same = {
        key_of(with_options({"options": spelling}), {})
        for spelling in ("-c search_path=shop", "-csearch_path=shop", "--search-path=shop")
    }
    assert len(same) == 1
    assert same < keys
    role = key_of(with_options({"options": "-c role=blog"}), {})
    assert role not in keys | {key_of(database("shop"), {})}


def test_postgresql_services_and_options_naming_another_database_never_share_a_key() -> None:
    by_service = {
        key_of({"default": {"ENGINE": "django.db.backends.postgresql", "OPTIONS": opts}}, {})
        for opts in ({"service": "shop"}, {"service": "blog"})
    }
    assert len(by_service) == 2
    by_option = {
        key_of(with_options(opts), {}) for opts in ({"dbname": "blog"}, {"assume_role": "blog"}, {})
    }
    assert len(by_option) == 3


@pytest.mark.parametrize(
    "options",
    [
        {"db": "blog"},
        {"database": "blog"},
        {"read_default_file": "/etc/mysql/blog.cnf"},
        {"unix_socket": "/run/mysqld/blog.sock"},
        {"init_command": "USE blog"},
    ],
)
def test_mariadb_options_that_change_the_database_never_share_a_key(
    options: dict[str, Any],
) -> None:
    engine = "django.db.backends.mysql"
    plain = key_of(with_options({}, engine), {})
    assert key_of(with_options(options, engine), {}) != plain


@pytest.mark.parametrize(
    ("engine", "options"),
    [
        (
            "django.db.backends.postgresql",
            {
                "sslmode": "require",
                "connect_timeout": 5,
                "isolation_level": 3,
                "pool": True,
                "options": "-c statement_timeout=5000",
            },
        ),
        ("django.db.backends.mysql", {"charset": "utf8mb4", "connect_timeout": 5, "ssl": {}}),
        ("django.db.backends.sqlite3", {"timeout": 20, "transaction_mode": "IMMEDIATE"}),
    ],
)
def test_options_that_only_tune_connections_keep_the_prefix(
    engine: str, options: dict[str, Any]
) -> None:
    # A management command with a longer timeout must publish where the web workers read.
    assert key_of(with_options(options, engine), {}) == key_of(with_options({}, engine), {})


def test_a_database_named_by_a_postgresql_service_is_not_ambiguous() -> None:
    databases = {
        "default": {"ENGINE": "django.db.backends.postgresql", "OPTIONS": {"service": "shop"}}
    }
    assert ids(databases, {"REDIS_URL": REDIS}) == []


def documented_options() -> list[tuple[str, str]]:
    """``(ENGINE, option)`` for each option the key-prefix table of docs/site.md says counts."""
    engines = {
        "PostgreSQL": "django.db.backends.postgresql",
        "MySQL": "django.db.backends.mysql",
        "SQLite": "django.db.backends.sqlite3",
    }
    table = (DOCS / "site.md").read_text().split("| backend | `OPTIONS` that count |")[1]
    options = []
    for line in table.split("\n\n")[0].splitlines()[2:]:
        backend, counted = line.strip("|").split("|")
        keys = re.findall(r"`(\w+)`", counted.split("; in `options`")[0])
        options += [(engines[backend.split()[0].rstrip(",")], key) for key in keys]
    return options


DOCUMENTED_OPTIONS = documented_options()
assert len(DOCUMENTED_OPTIONS) == 15, DOCUMENTED_OPTIONS


@pytest.mark.parametrize(("engine", "key"), DOCUMENTED_OPTIONS)
def test_every_documented_option_changes_the_derived_prefix(engine: str, key: str) -> None:
    plain = key_of(with_options({}, engine), {})
    assert key_of(with_options({key: "other"}, engine), {}) != plain


@pytest.mark.parametrize("setting", ["search_path", "role", "session_authorization"])
def test_every_documented_postgresql_setting_changes_the_derived_prefix(setting: str) -> None:
    plain = key_of(with_options({}), {})
    assert key_of(with_options({"options": f"-c {setting}=other"}), {}) != plain


def test_the_user_does_not_change_the_derived_prefix() -> None:
    as_admin = database("shop")
    as_admin["default"]["USER"] = "admin"
    assert key_of(as_admin, {}) == key_of(database("shop"), {})
