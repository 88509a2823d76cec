"""SQLite: the losers of a consume race inside transactions get None, never a database error."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from keel.models import ActionToken
from keel.tokens import JsonActionTokenManager
from keel.tokens.database_store import DatabaseTokenStore

pytestmark = pytest.mark.django_db(transaction=True)

CONSUMERS = 4
PURPOSE = "race:sqlite"


def consume_in_transactions(
    manager: JsonActionTokenManager, token: str
) -> tuple[list[object], list[BaseException]]:
    """``CONSUMERS`` threads, each reading then consuming ``token`` in one transaction."""
    barrier = threading.Barrier(CONSUMERS)
    results: list[object] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            with transaction.atomic():
                ActionToken.objects.filter(purpose=PURPOSE).count()  # a read first
                barrier.wait()
                results.append(manager.consume_token(token))
        except BaseException as exc:  # reported by the caller's assertion
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=consume) for _ in range(CONSUMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_consume_race_inside_transactions_on_sqlite() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's transactions refuse a write after a read at once; the others wait")
    manager = JsonActionTokenManager(prefix=PURPOSE, store=DatabaseTokenStore())
    for _ in range(5):
        results, errors = consume_in_transactions(manager, manager.create_token({"n": 1}))
        assert errors == []
        assert sorted(r is not None for r in results) == [False] * (CONSUMERS - 1) + [True]
