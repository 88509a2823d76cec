"""Helpers of the tests of ``keel.tokens``: every store by name, what a store holds, and
threads released at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from django.conf import settings as django_settings

from keel.models import ActionToken
from keel.tokens import (
    DatabaseTokenStore,
    JsonActionTokenDatabaseManager,
    JsonActionTokenManager,
    JsonActionTokenRedisManager,
)
from tests.conftest import in_threads

T = TypeVar("T")

#: Every store a manager may use: Redis; the database with ``DELETE … RETURNING`` where the
#: backend has it; the database with a read and a conditional delete (MySQL's), forced.
STORES = ["redis", "database", "database-select-delete"]


def manager_on(request: pytest.FixtureRequest, kind: str, prefix: str) -> JsonActionTokenManager:
    """A manager of purpose ``prefix`` on the store ``kind`` (one of ``STORES``); Redis is
    turned on for the test when ``kind`` is ``"redis"``."""
    if kind == "redis":
        request.getfixturevalue("keel_redis")
        return JsonActionTokenRedisManager(prefix=prefix)
    store = DatabaseTokenStore(delete_returning=False if kind.endswith("delete") else None)
    return JsonActionTokenDatabaseManager(prefix=prefix, store=store)


def redis_value(client: Any, key: bytes) -> str:
    """A string's value, or a subject index's members."""
    if client.type(key) == b"zset":
        return b" ".join(client.zrange(key, 0, -1)).decode()
    return (client.get(key) or b"").decode()


def dump_redis(client: Any) -> list[str]:
    """Every key the test run wrote to Redis, with its value, as text."""
    keys = client.scan_iter(match=f"{django_settings.TEST_KEY_PREFIX}*")
    return [f"{key.decode()} {redis_value(client, key)}" for key in keys]


def dump_table() -> list[str]:
    """Every row of the token table, as text."""
    return [
        " ".join([row.digest, row.purpose, row.subject, row.payload])
        for row in ActionToken.objects.all()
    ]


def consume_race(
    consume: Callable[[str], Any],
    tokens: list[str],
    threads: int,
    *,
    first: Callable[[], object] = lambda: None,
) -> tuple[list[int], list[BaseException]]:
    """``threads`` threads (each running ``first()`` once) consume each of ``tokens`` at the
    same moment, token after token; returns how many won each token, and the errors."""
    wins = [0] * len(tokens)
    lock = threading.Lock()

    def consume_all(_: int, barrier: threading.Barrier) -> None:
        try:
            first()
            for i, token in enumerate(tokens):
                barrier.wait()
                if consume(token) is not None:
                    with lock:
                        wins[i] += 1
        except BaseException:
            barrier.abort()  # the others would wait for this thread forever
            raise

    _, errors = in_threads(consume_all, threads)
    return wins, errors
