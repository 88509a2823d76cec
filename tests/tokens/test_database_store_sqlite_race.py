"""SQLite: a consume inside a transaction answers None only for a token that is gone.

SQLite refuses at once ("database is locked") a write by a transaction that read before
another connection wrote. The consume then cannot know whether the token is used: it raises
TokenStoreBusy (a TokenStoreUnavailable), never None for a token still live.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from keel.models import ActionToken
from keel.tokens import JsonActionTokenManager, TokenStoreBusy, TokenStoreUnavailable
from keel.tokens.database_store import DatabaseTokenStore
from tests.conftest import in_threads

pytestmark = pytest.mark.django_db(transaction=True)

CONSUMERS = 4
PURPOSE = "race:sqlite"


def consume_in_transactions(
    manager: JsonActionTokenManager, token: str
) -> tuple[list[object], list[BaseException]]:
    """``CONSUMERS`` threads, each reading then consuming ``token`` in one transaction."""

    def consume(_: int, barrier: threading.Barrier) -> object:
        with transaction.atomic():
            ActionToken.objects.filter(purpose=PURPOSE).count()  # a read first
            barrier.wait()
            return manager.consume_token(token)

    return in_threads(consume, CONSUMERS)


def test_consume_race_inside_transactions_on_sqlite() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's transactions refuse a write after a read at once; the others wait")
    manager = JsonActionTokenManager(prefix=PURPOSE, store=DatabaseTokenStore())
    for _ in range(5):
        token = manager.create_token({"n": 1})
        results, errors = consume_in_transactions(manager, token)
        # One winner; each loser is told the token is used, or that the store was busy.
        assert all(isinstance(error, TokenStoreBusy) for error in errors), errors
        assert [r for r in results if r is not None] == [{"n": 1}]
        assert manager.get_token_data(token) is None


def test_a_consume_locked_out_by_an_unrelated_write_is_busy_not_used() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's transactions refuse a write after a read at once; the others wait")
    manager = JsonActionTokenManager(prefix=PURPOSE, store=DatabaseTokenStore())
    other = JsonActionTokenManager(prefix="race:other", store=DatabaseTokenStore())
    token = manager.create_token({"user_id": 1})
    writing = threading.Event()

    def unrelated_write() -> None:
        try:
            writing.set()
            other.create_token({"unrelated": True})
        finally:
            connections.close_all()

    writer = threading.Thread(target=unrelated_write)
    with pytest.raises(TokenStoreBusy, match="retry"), transaction.atomic():  # noqa: PT012
        assert manager.get_token_data(token) == {"user_id": 1}  # a read first
        writer.start()
        writing.wait()
        time.sleep(0.3)  # the writer now holds the write lock and waits for this reader
        manager.consume_token(token)
    writer.join()
    assert issubclass(TokenStoreBusy, TokenStoreUnavailable)  # the views' "store down" path
    assert manager.consume_token(token) == {"user_id": 1}  # nobody had used it
