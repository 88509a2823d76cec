"""Change tracking follows the transaction: a rolled-back save leaves the instance dirty.

The retry loop every Django project writes (``save()`` inside ``atomic()``, an error rolls
the block back, the same instance is saved again) must write the same columns again,
re-check the state transition against what is really stored, and send the transition
event once, on the commit that keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from keel.exceptions import DatabaseUpdatePreconditionsError, TransitionNotAllowedError
from tests.models.mixins.conftest import loaded_item, stored_values, updates
from tests.testapp.models.mixins_core import (
    Purchase,
    PurchaseStates,
    Task,
    TaskParent,
    TaskStates,
    TrackedChild,
    TrackedItem,
)

pytestmark = pytest.mark.django_db


class Boom(Exception):
    """The error that rolls the block back."""


def _in_doomed_block(*steps: Callable[[], object]) -> None:
    """Run ``steps`` in ``atomic()``, then roll the block back with an error."""

    def block() -> None:
        with transaction.atomic():
            for step in steps:
                step()
            raise Boom

    with pytest.raises(Boom):
        block()


def _save_then_roll_back(instance: Any) -> None:
    _in_doomed_block(instance.save)


def test_a_rolled_back_save_leaves_the_instance_as_dirty_as_before() -> None:
    item = loaded_item(count=1)
    item.name = "b"
    item.data = {"k": [1]}
    _save_then_roll_back(item)
    assert item.get_dirty_fields() == {"name": "a", "data": {}}
    with CaptureQueriesContext(connection) as ctx:
        item.save()
    (sql,) = updates(ctx)
    assert "name" in sql and "data" in sql
    assert stored_values(item, "name", "data") == ("b", {"k": [1]})
    assert not item.is_dirty()


def test_an_in_place_edit_rolled_back_is_written_by_the_retry() -> None:
    item = loaded_item(data={"k": 1})
    item.data["k"] = 2
    _save_then_roll_back(item)
    assert item.has_changed("data")
    item.save()
    assert TrackedItem.objects.get(pk=item.pk).data == {"k": 2}


def test_assignments_made_after_the_rolled_back_save_are_kept() -> None:
    item = loaded_item(count=1)
    item.name = "b"
    # count is changed after the write, inside the doomed block
    _in_doomed_block(item.save, lambda: setattr(item, "count", 2))
    assert item.get_dirty_fields() == {"name": "a", "count": 1}
    item.save()
    assert stored_values(item, "name", "count") == ("b", 2)


def test_a_savepoint_rolled_back_inside_a_kept_transaction_is_retried() -> None:
    item = loaded_item()
    with transaction.atomic():
        item.count = 5
        item.save()  # kept: the outer block commits
        item.name = "b"
        _save_then_roll_back(item)
        assert item.get_dirty_fields() == {"name": "a"}
        item.save()
    assert stored_values(item, "name", "count") == ("b", 5)


def test_a_save_that_stays_in_the_transaction_is_not_written_twice() -> None:
    item = loaded_item()
    with transaction.atomic():
        item.name = "b"
        item.save()
        with CaptureQueriesContext(connection) as ctx:
            item.save()
    assert updates(ctx) == []


def test_a_rolled_back_insert_is_inserted_again() -> None:
    item = TrackedItem(name="new")
    _save_then_roll_back(item)
    assert not item.is_dirty()  # any tracking call (or the next save) restores the instance
    assert item.pk is None
    assert item._state.adding
    item.save()
    assert TrackedItem.objects.get(pk=item.pk).name == "new"


def test_a_rolled_back_multi_table_insert_is_inserted_again() -> None:
    child = TrackedChild(name="p", extra="c")
    _save_then_roll_back(child)
    child.save()
    row = TrackedChild.objects.get(pk=child.pk)
    assert (row.name, row.extra) == ("p", "c")


def test_the_retry_re_checks_the_transition_against_the_stored_state() -> None:
    """Fixed: after the rollback the instance took the unsaved state as stored, so a
    transition from it was allowed (here new -> done, which the graph forbids)."""
    task = Task.objects.create(name="t")
    task = Task.objects.get(pk=task.pk)
    task.state = TaskStates.RUNNING
    _save_then_roll_back(task)
    assert task.previous("state") == TaskStates.NEW
    task.state = TaskStates.DONE
    with pytest.raises(TransitionNotAllowedError) as info:
        task.save()
    assert (info.value.source, info.value.target) == (TaskStates.NEW, TaskStates.DONE)
    assert Task.objects.get(pk=task.pk).state == TaskStates.NEW


@pytest.mark.django_db(transaction=True)
def test_the_retry_writes_the_transition_and_sends_its_event_once_on_commit(
    transition_events: list[tuple[Any, Any]],
) -> None:
    order = Purchase.objects.create(reference="o-1")
    order = Purchase.objects.get(pk=order.pk)
    assert transition_events == [(None, PurchaseStates.NEW)]  # the creation
    transition_events.clear()
    order.state = PurchaseStates.PAID
    _save_then_roll_back(order)
    assert transition_events == []
    assert Purchase.objects.get(pk=order.pk).state == PurchaseStates.NEW
    with transaction.atomic():
        order.save()
        assert transition_events == []  # on commit, not before
    assert transition_events == [(PurchaseStates.NEW, PurchaseStates.PAID)]
    assert Purchase.objects.get(pk=order.pk).state == PurchaseStates.PAID
    order.save()
    assert transition_events == [(PurchaseStates.NEW, PurchaseStates.PAID)]


@pytest.mark.django_db(transaction=True)
def test_after_the_commit_the_written_values_are_the_baseline() -> None:
    item = loaded_item()
    with transaction.atomic():
        item.name = "b"
        item.save()
    assert not item.is_dirty()
    assert "_keel_journal" not in item.__dict__
    with CaptureQueriesContext(connection) as ctx:
        item.save()
    assert updates(ctx) == []


@pytest.mark.django_db(transaction=True)
def test_a_whole_transaction_rolled_back_is_retried() -> None:
    item = loaded_item()
    item.name = "b"
    _save_then_roll_back(item)
    item.save()  # autocommit
    assert TrackedItem.objects.get(pk=item.pk).name == "b"


def test_the_retry_cannot_overwrite_a_concurrent_transition() -> None:
    """Fixed: after the rollback a full save saw no state change and wrote it unguarded, so
    a row moved to canceled meanwhile was set back to running (a forbidden transition)."""
    task = TaskParent.objects.create()
    task = TaskParent.objects.get(pk=task.pk)
    task.state = TaskStates.RUNNING
    _save_then_roll_back(task)
    TaskParent.objects.filter(pk=task.pk).update(state=TaskStates.CANCELED)
    with pytest.raises(DatabaseUpdatePreconditionsError):
        task.save()
    assert TaskParent.objects.get(pk=task.pk).state == TaskStates.CANCELED
