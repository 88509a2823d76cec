"""Tokens to trust: keyed digests, exact subjects, payloads that come back, bounded TTLs.

Each test holds on every store (Redis, the database with ``DELETE … RETURNING``, the database
with a read and a conditional delete) and on every database the suite runs on.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import override_settings

from keel.redis import get_redis
from keel.tokens import (
    DatabaseTokenStore,
    InvalidPayload,
    JsonActionTokenDatabaseManager,
    JsonActionTokenManager,
    JsonActionTokenRedisManager,
)
from tests.tokens.conftest import STORES, consume_race, dump_redis, dump_table, manager_on

pytestmark = pytest.mark.django_db


def dump(manager: JsonActionTokenManager) -> str:
    if isinstance(manager, JsonActionTokenRedisManager):
        return "\n".join(dump_redis(get_redis()))
    return "\n".join(dump_table())


@pytest.fixture(params=STORES)
def manager(request: pytest.FixtureRequest) -> JsonActionTokenManager:
    return manager_on(request, request.param, f"trust:{uuid.uuid4().hex[:8]}")


# -- subjects: exact on every collation, never in clear ---------------------------------------


def test_subjects_compare_exactly_not_by_collation(manager: JsonActionTokenManager) -> None:
    # MariaDB's utf8mb4_unicode_ci finds "josé" = "JOSE" = "jose" and "ann" = "ann ".
    jose = manager.create_token({"n": 1}, subject="josé")
    manager.create_token({"n": 2}, subject="JOSE")
    ann = manager.create_token({"n": 3}, subject="ann")
    manager.create_token({"n": 4}, subject="ann ")
    assert manager.revoke_subject("jose") == 0
    assert manager.revoke_subject("ANN") == 0
    assert manager.get_token_data(jose) == {"n": 1}
    assert manager.get_token_data(ann) == {"n": 3}
    assert manager.revoke_subject("josé") == 1
    assert manager.get_token_data(jose) is None


def test_subjects_are_never_stored_in_clear(manager: JsonActionTokenManager) -> None:
    manager.create_token({"n": 1}, subject="ada@example.com")
    manager.create_token({"n": 2}, subject=4242)
    stored = dump(manager)
    assert stored
    assert "ada@example.com" not in stored
    assert "4242" not in stored


# -- digests keyed with the project's secret ---------------------------------------------------


def test_a_token_of_another_project_is_worthless(manager: JsonActionTokenManager) -> None:
    # Same store, same key prefix, same purpose; only SECRET_KEY differs.
    token = manager.create_token({"n": 1}, subject="ada")
    with override_settings(SECRET_KEY="another-project-secret", SECRET_KEY_FALLBACKS=[]):
        assert manager.get_token_data(token) is None
        assert manager.consume_token(token) is None
        assert manager.delete_token(token) is False
        assert manager.revoke_subject("ada") == 0
    assert manager.consume_token(token) == {"n": 1}


def test_tokens_survive_a_key_rotation_through_the_fallbacks(
    manager: JsonActionTokenManager,
) -> None:
    old_key = django_settings.SECRET_KEY
    peeked = manager.create_token({"n": 1})
    consumed = manager.create_token({"n": 2})
    deleted = manager.create_token({"n": 3})
    revoked = manager.create_token({"n": 4}, subject="ada")
    replaced = manager.create_token({"n": 5}, subject="bob")
    with override_settings(SECRET_KEY="the-new-secret", SECRET_KEY_FALLBACKS=[old_key]):
        assert manager.get_token_data(peeked) == {"n": 1}
        assert manager.consume_token(consumed) == {"n": 2}
        assert manager.consume_token(consumed) is None
        assert manager.delete_token(deleted) is True
        assert manager.revoke_subject("ada") == 1
        assert manager.get_token_data(revoked) is None
        # A new token for a subject revokes the one issued under the old key.
        newest = manager.create_token({"n": 6}, subject="bob")
        assert manager.get_token_data(replaced) is None
        assert manager.get_token_data(newest) == {"n": 6}
    # Once the old key is dropped, its tokens are dead.
    with override_settings(SECRET_KEY="the-new-secret", SECRET_KEY_FALLBACKS=[]):
        assert manager.get_token_data(peeked) is None


# -- every payload creation accepts can be consumed --------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    payload: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        payload = {"a": payload}
    return payload


@pytest.mark.parametrize("depth", [33, 200, 950])
def test_payloads_nested_too_deep_are_refused_at_creation(
    manager: JsonActionTokenManager, depth: int
) -> None:
    with pytest.raises(InvalidPayload, match="nested"):
        manager.create_token(nested(depth))
    assert "leaf" not in dump(manager)


def test_the_deepest_accepted_payload_is_consumed(manager: JsonActionTokenManager) -> None:
    deepest = nested(manager.max_payload_depth)
    token = manager.create_token(deepest)
    assert manager.consume_token(token) == deepest


def test_deeply_nested_lists_count_too(manager: JsonActionTokenManager) -> None:
    value: Any = 1
    for _ in range(40):
        value = [value]
    with pytest.raises(InvalidPayload, match="nested"):
        manager.create_token({"v": value})


@pytest.mark.parametrize(
    "payload",
    [
        {1: "a", "1": "b"},
        {"x": {True: 1, "true": 2}},
        {"list": [{None: 1, "null": 2}]},
        {1.5: "a", "1.5": "b"},
    ],
    ids=["int-and-str", "nested-bool", "in-a-list", "float"],
)
def test_keys_that_collide_in_json_are_refused(
    manager: JsonActionTokenManager, payload: dict[Any, Any]
) -> None:
    with pytest.raises(InvalidPayload, match="collide"):
        manager.create_token(payload)


# -- TTLs: a documented range, a clear ValueError ----------------------------------------------


@pytest.mark.parametrize(
    "ttl",
    [
        {"ttl_seconds": 2**1100},
        {"ttl_hours": 2**1100},
        {"ttl_hours": 1e308},
        {"ttl_seconds": 1e-9},
        {"ttl_seconds": 0.999},
        {"ttl_hours": 1e-12},
    ],
    ids=["2**1100s", "2**1100h", "1e308h", "1e-9s", "0.999s", "1e-12h"],
)
def test_ttls_outside_the_range_are_value_errors(
    manager: JsonActionTokenManager, ttl: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="A token lifetime must be between 1 and 2,592,000 s"):
        manager.create_token({"a": 1}, **ttl)
    assert dump(manager) == ""


def test_the_shortest_ttl_gives_a_live_token(manager: JsonActionTokenManager) -> None:
    token = manager.create_token({"a": 1}, ttl_seconds=1)
    assert manager.consume_token(token) == {"a": 1}


# -- consume races under REPEATABLE READ -------------------------------------------------------

RR_TOKENS = 60
RR_THREADS = 8
REPEATABLE_READ = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "mysql": "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
}


def repeatable_read() -> None:
    with connection.cursor() as cursor:
        cursor.execute(REPEATABLE_READ[connection.vendor])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("returning", [None, False], ids=["delete-returning", "select-delete"])
def test_losers_of_a_repeatable_read_race_get_none(returning: bool | None) -> None:
    if connection.vendor not in REPEATABLE_READ:
        pytest.skip("SQLite has no REPEATABLE READ: its writers never overlap")
    manager = JsonActionTokenDatabaseManager(
        prefix="trust:rr", store=DatabaseTokenStore(delete_returning=returning)
    )
    tokens = [manager.create_token({"i": i}) for i in range(RR_TOKENS)]
    wins, errors = consume_race(manager.consume_token, tokens, RR_THREADS, first=repeatable_read)
    assert errors == []
    assert wins == [1] * RR_TOKENS
