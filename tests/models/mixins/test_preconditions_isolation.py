"""Guarded saves under REPEATABLE READ, against a real second connection.

The caller's transaction reads the row, a second connection (another thread) changes and
commits it, then the guarded save runs. Whatever the database answers (PostgreSQL: a
serialization failure; MariaDB: no row matched; SQLite: the database is locked), the caller
gets keel's precondition error, and its transaction stays usable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError, connection, connections, transaction

from keel.exceptions import DatabaseUpdatePreconditionsError
from tests.testapp.models.mixins_core import (
    GiftPurchase,
    PurchaseStates,
    Task,
    TaskStates,
    VersionedDoc,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _repeatable_read() -> None:
    """Make the transaction just opened by ``atomic()`` REPEATABLE READ (its first statement)."""
    if connection.vendor == "sqlite":
        return  # SQLite transactions are serializable
    with connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _assert_repeatable_read() -> None:
    """After the transaction's first read: it really runs at REPEATABLE READ.

    PostgreSQL says so; MariaDB has no reliable way to tell (``innodb_trx`` does not always
    list a read-only transaction), so there a row committed by another connection must stay
    invisible to this transaction's snapshot.
    """
    if connection.vendor == "sqlite":
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone() == ("repeatable read",)
        return
    seen = Task.objects.count()
    _in_another_connection(lambda: Task.objects.create(name="probe")).join()
    assert Task.objects.count() == seen, "the transaction does not run at REPEATABLE READ"


def _in_another_connection(work: Callable[[], object]) -> threading.Thread:
    """Run ``work`` in a thread (its own connection, autocommit); give it time to finish.

    On SQLite it cannot commit while the caller's transaction holds its read lock: it waits,
    and finishes once that transaction ends.
    """

    def run() -> None:
        try:
            work()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=1.0)
    return thread


def _read_then_changed_elsewhere(row: Any, **changes: Any) -> tuple[Any, threading.Thread]:
    """In this transaction (made REPEATABLE READ): a copy of ``row`` read now, and the thread
    of another connection that writes ``changes`` to it (see ``_in_another_connection``)."""
    model = type(row)
    _repeatable_read()
    mine = model.objects.get(pk=row.pk)
    _assert_repeatable_read()
    other = _in_another_connection(lambda: model.objects.filter(pk=row.pk).update(**changes))
    return mine, other


def _assert_still_usable() -> None:
    assert Task.objects.count() >= 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_concurrent_transition_is_a_precondition_error_under_repeatable_read() -> None:
    """Fixed: PostgreSQL raised a raw OperationalError (could not serialize access)."""
    task = Task.objects.create(name="t")
    with transaction.atomic():
        mine, other = _read_then_changed_elsewhere(task, state=TaskStates.RUNNING)
        mine.state = TaskStates.CANCELED
        with pytest.raises(DatabaseUpdatePreconditionsError) as info:
            mine.save()
        assert info.value.pk == task.pk
        if connection.vendor != "mysql":  # MariaDB matches no row; the others refuse
            assert isinstance(info.value.__cause__, OperationalError)
        _assert_still_usable()
    other.join()
    assert Task.objects.get(pk=task.pk).state == TaskStates.RUNNING


def test_a_concurrent_change_is_a_precondition_error_under_repeatable_read() -> None:
    doc = VersionedDoc.objects.create(name="a", version=1)
    with transaction.atomic():
        mine, other = _read_then_changed_elsewhere(doc, version=2, name="theirs")
        mine.name = "mine"
        with pytest.raises(DatabaseUpdatePreconditionsError) as info:
            mine.save(pre_filters={"version": 1})
        assert info.value.conditions["filters"] == {"version": 1}
        _assert_still_usable()
    other.join()
    assert VersionedDoc.objects.get(pk=doc.pk).name == "theirs"


def test_a_concurrent_multi_table_transition_under_repeatable_read() -> None:
    order = GiftPurchase.objects.create(reference="g")
    with transaction.atomic():
        mine, other = _read_then_changed_elsewhere(order, state=PurchaseStates.PAID)
        mine.state = PurchaseStates.PAID
        mine.message = "m"
        with pytest.raises(DatabaseUpdatePreconditionsError):
            mine.save()
        _assert_still_usable()
    other.join()
    row = GiftPurchase.objects.get(pk=order.pk)
    assert (row.state, row.message) == (PurchaseStates.PAID, "")


def test_the_retry_in_a_new_transaction_sees_the_concurrent_state() -> None:
    task = Task.objects.create(name="t")
    with transaction.atomic():
        mine, other = _read_then_changed_elsewhere(task, state=TaskStates.RUNNING)
        mine.state = TaskStates.RUNNING
        with pytest.raises(DatabaseUpdatePreconditionsError):
            mine.save()
    other.join()
    mine.refresh_from_db()
    mine.state = TaskStates.DONE
    mine.save()
    assert Task.objects.get(pk=task.pk).state == TaskStates.DONE
