"""A guarded save that loses a deadlock on MariaDB: InnoDB rolls back the whole transaction,
and keel says so instead of reporting the caller's block as usable."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections, transaction
from django.db.transaction import TransactionManagementError

from keel.exceptions import DatabaseUpdatePreconditionsError, TransactionRolledBackError
from tests.testapp.models.mixins_core import Task, TaskStates

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connections["default"].vendor != "mysql",
        reason="InnoDB rolls back the whole transaction on a deadlock (MariaDB/MySQL)",
    ),
]


def _other_connection(task_pk: int, other_pk: int, locked: threading.Event) -> threading.Thread:
    """A second connection locks the task's row, then waits for ``other_pk``'s row; it has
    written more rows than us, so InnoDB picks our transaction as the deadlock victim."""

    def run() -> None:
        try:
            with transaction.atomic():
                Task.objects.bulk_create([Task(name=f"bulk{i}") for i in range(200)])
                Task.objects.filter(pk=task_pk).update(name="theirs")
                locked.set()
                Task.objects.filter(pk=other_pk).update(name="theirs")
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


class Aborted(Exception):
    pass


def test_a_deadlocked_guarded_save_reports_the_whole_transaction_rolled_back() -> None:
    task = Task.objects.create(name="t")
    other = Task.objects.create(name="o")
    locked = threading.Event()
    thread = None
    caught: list[BaseException] = []

    def block() -> None:
        nonlocal thread
        with transaction.atomic():
            Task.objects.filter(pk=other.pk).update(name="mine")
            thread = _other_connection(task.pk, other.pk, locked)
            assert locked.wait(10)
            time.sleep(0.5)  # the other connection now waits for our row
            task.state = TaskStates.RUNNING
            try:
                task.save()
            except DatabaseUpdatePreconditionsError as error:
                caught.append(error)
            with pytest.raises(TransactionManagementError):  # the block cannot go on
                Task.objects.get(pk=other.pk)

    try:
        block()
    finally:
        if thread is not None:
            thread.join(30)
    assert len(caught) == 1
    assert isinstance(caught[0], TransactionRolledBackError)
    assert "rolled back the whole transaction" in str(caught[0])
    assert Task.objects.get(pk=other.pk).name == "theirs"  # our write is gone
    assert Task.objects.get(pk=task.pk).state == TaskStates.NEW
