"""The database store under lock contention: a lost deadlock never reaches the caller raw.

A create and a revoke for one subject lock the same rows in different orders on InnoDB (a
delete by subject takes the index entry, then the row; a delete by digest the row first). In
keel's own transaction the loser runs again; in the caller's, it is a ``TokenStoreBusy``.
"""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection, transaction
from django.test import override_settings

from keel.tokens import DatabaseTokenStore, JsonActionTokenDatabaseManager, TokenStoreBusy
from tests.conftest import at_once

pytestmark = pytest.mark.django_db(transaction=True)

OLD_KEY = "the-old-secret-the-old-secret-the-old-secret-"
#: A worker after a key rotation: each token is also indexed under the old key's digest.
ROTATED = {"SECRET_KEY": "the-new-secret-the-new-secret-the-new-secret-"}

THREADS = 8
#: Before creates and revokes took turns, 60 rounds showed a deadlock on MariaDB about once.
ROUNDS = 60


@override_settings(**ROTATED, SECRET_KEY_FALLBACKS=[OLD_KEY])
def test_revokes_racing_creates_never_fail() -> None:
    manager = JsonActionTokenDatabaseManager(prefix="deadlock", store=DatabaseTokenStore())
    turns = itertools.count()
    errors: list[BaseException] = []
    for number in range(ROUNDS):
        subject = f"ada-{number}"

        def create_or_revoke(subject: str = subject) -> object:
            if next(turns) % 4 == 0:  # one call in four revokes, the others create
                return manager.revoke_subject(subject)
            return manager.create_token({"n": 1}, subject=subject)

        errors += at_once(lambda _: create_or_revoke(), THREADS)[1]
        manager.revoke_subject(subject)
    assert errors == []


def test_a_deadlock_in_the_callers_transaction_is_a_busy_store() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has one write lock per database: transactions queue, never deadlock")
    manager = JsonActionTokenDatabaseManager(prefix="deadlock", store=DatabaseTokenStore())
    first_locked = [threading.Event(), threading.Event()]

    def create_both(index: int) -> None:
        # Each transaction creates for one subject, then (once the other has too) for the
        # other's: each waits for a lock row the other holds.
        mine, theirs = ("ada", "bob")[index], ("bob", "ada")[index]
        with transaction.atomic():
            manager.create_token({"n": 1}, subject=mine)
            first_locked[index].set()
            first_locked[1 - index].wait(timeout=10)
            manager.create_token({"n": 2}, subject=theirs)

    errors = at_once(create_both, 2)[1]
    assert [type(error) for error in errors] == [TokenStoreBusy], errors
    assert "Nothing of it was written: retry" in str(errors[0])
    # The winner's two tokens stand; of the loser's transaction nothing was written.
    assert manager.revoke_subject("ada") == 1
    assert manager.revoke_subject("bob") == 1
