"""Guards that cannot be bypassed: deferred fields, preset primary keys, multi-table models."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from keel.exceptions import (
    DatabaseUpdatePreconditionsError,
    InvalidStateError,
    RowDeletedError,
    RowNotFoundError,
    TransitionNotAllowedError,
)
from keel.models.mixins.tracking import NOT_LOADED
from tests.models.mixins.conftest import assert_a_concurrent_transition_is_refused, updates
from tests.testapp.models.mixins_core import (
    GiftPurchase,
    PurchaseStates,
    Task,
    TaskChild,
    TaskStates,
    Ticket,
    TicketStatus,
    TrackedChild,
    TrackedItem,
    VersionedChild,
    VersionedDoc,
    stored_row,
)

pytestmark = pytest.mark.django_db


def _stored_task(state: str = TaskStates.NEW) -> Task:
    return stored_row(Task, name="t", state=state)


# --- fields assigned while deferred ------------------------------------------------------------


@pytest.mark.parametrize("load", ["only", "defer"])
def test_a_deferred_field_assigned_is_written(load: str) -> None:
    """Fixed: the value was dropped on save, where plain Django writes it."""
    item = TrackedItem.objects.create(name="a", count=1)
    qs = TrackedItem.objects.only("name") if load == "only" else TrackedItem.objects.defer("count")
    item = qs.get(pk=item.pk)
    item.count = 7
    assert item.get_dirty_fields() == {"count": NOT_LOADED}
    item.save()
    assert TrackedItem.objects.get(pk=item.pk).count == 7


def test_a_deferred_load_is_not_a_change() -> None:
    item = TrackedItem.objects.create(name="a", count=1)
    item = TrackedItem.objects.only("name").get(pk=item.pk)
    assert item.count == 1  # loads it
    assert not item.is_dirty()


def test_a_deferred_multi_table_field_assigned_is_written() -> None:
    child = TrackedChild.objects.create(name="p", extra="x")
    child = TrackedChild.objects.only("name").get(pk=child.pk)
    child.extra = "y"
    child.save()
    assert TrackedChild.objects.get(pk=child.pk).extra == "y"


def test_a_forbidden_transition_of_a_deferred_state_is_refused(
    transition_events: list[tuple[Any, Any]],
) -> None:
    """Fixed: with the state deferred, new -> done was written with no check, no event."""
    task = Task.objects.defer("state").get(pk=_stored_task().pk)
    task.state = TaskStates.DONE
    with pytest.raises(TransitionNotAllowedError) as info:
        task.save()
    assert (info.value.source, info.value.target) == (TaskStates.NEW, TaskStates.DONE)
    assert Task.objects.get(pk=task.pk).state == TaskStates.NEW
    assert transition_events == []


def test_an_allowed_transition_of_a_deferred_state_is_guarded_in_the_update(
    transition_events: list[tuple[Any, Any]],
) -> None:
    task = Task.objects.defer("state").get(pk=_stored_task().pk)
    task.state = TaskStates.RUNNING
    with CaptureQueriesContext(connection) as ctx:
        task.save()
    if connection.features.has_select_for_update:  # the stored state was read under a lock
        assert any("FOR UPDATE" in q["sql"].upper() for q in ctx.captured_queries)
    (sql,) = updates(ctx)
    where = sql.split(" WHERE ", 1)[1]
    assert "state" in where and " IN " in where.upper()
    assert Task.objects.get(pk=task.pk).state == TaskStates.RUNNING
    assert transition_events == [(TaskStates.NEW, TaskStates.RUNNING)]
    assert not task.is_dirty()


def test_a_deferred_state_set_to_its_stored_value_sends_no_event(
    transition_events: list[tuple[Any, Any]],
) -> None:
    task = Task.objects.defer("state").get(pk=_stored_task(TaskStates.RUNNING).pk)
    task.state = TaskStates.RUNNING
    task.save()
    assert transition_events == []


# --- new instances with a preset primary key ----------------------------------------------------


def test_a_preset_pk_cannot_write_a_forbidden_transition(
    transition_events: list[tuple[Any, Any]],
) -> None:
    """Fixed: Task(pk=<existing>, state="done").save() overwrote the row unchecked."""
    stored = _stored_task()
    with pytest.raises(TransitionNotAllowedError) as info:
        Task(pk=stored.pk, name="t", state=TaskStates.DONE).save()
    assert info.value.source == TaskStates.NEW
    assert Task.objects.get(pk=stored.pk).state == TaskStates.NEW
    assert transition_events == []


def test_a_preset_pk_with_an_allowed_transition_updates_the_row(
    transition_events: list[tuple[Any, Any]],
) -> None:
    stored = _stored_task()
    task = Task(pk=stored.pk, name="renamed", state=TaskStates.RUNNING)
    task.save()
    row = Task.objects.get(pk=stored.pk)
    assert (row.name, row.state) == ("renamed", TaskStates.RUNNING)
    assert Task.objects.count() == 1
    assert transition_events == [(TaskStates.NEW, TaskStates.RUNNING)]


def test_a_preset_pk_of_no_row_inserts_in_the_initial_state_only() -> None:
    with pytest.raises(InvalidStateError):
        Task(pk=4242, name="t", state=TaskStates.RUNNING).save()
    assert not Task.objects.filter(pk=4242).exists()
    Task(pk=4242, name="t").save()
    assert Task.objects.get(pk=4242).state == TaskStates.NEW


def test_a_new_row_starts_in_the_initial_state() -> None:
    with pytest.raises(InvalidStateError):
        Task.objects.create(name="t", state=TaskStates.DONE)
    assert not Task.objects.exists()


def test_enforce_initial_state_false_allows_any_declared_state() -> None:
    ticket = Ticket.objects.create(title="t", status=TicketStatus.CLOSED)
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.CLOSED


# --- multi-table inheritance ------------------------------------------------------------------


def test_a_parent_table_state_transitions_with_a_child_column(
    transition_events: list[tuple[Any, Any]],
) -> None:
    """Fixed: the child table's UPDATE re-checked state = 'new' after the parent table had
    been set to 'paid' by the same save, so every such save failed as a concurrent change."""
    order = GiftPurchase.objects.create(reference="g")
    order = GiftPurchase.objects.get(pk=order.pk)
    transition_events.clear()
    order.state = PurchaseStates.PAID
    order.message = "happy birthday"
    order.save()
    row = GiftPurchase.objects.get(pk=order.pk)
    assert (row.state, row.message) == (PurchaseStates.PAID, "happy birthday")
    assert transition_events == [(PurchaseStates.NEW, PurchaseStates.PAID)]


def test_a_parent_table_state_without_tracking_transitions_with_a_child_column() -> None:
    child = TaskChild.objects.create()
    child = TaskChild.objects.get(pk=child.pk)
    child.state = TaskStates.RUNNING
    child.detail = "x"
    child.save()
    row = TaskChild.objects.get(pk=child.pk)
    assert (row.state, row.detail) == (TaskStates.RUNNING, "x")


def test_a_parent_table_precondition_holds_while_the_save_changes_it() -> None:
    child = VersionedChild.objects.create(name="p", version=1)
    child.version = 2
    child.extra = "x"
    child.save(pre_filters={"version": 1})
    row = VersionedChild.objects.get(pk=child.pk)
    assert (row.version, row.extra) == (2, "x")


def test_a_concurrent_transition_of_a_parent_table_state_is_still_refused() -> None:
    order = GiftPurchase.objects.create(reference="g")
    order = GiftPurchase.objects.get(pk=order.pk)
    assert order.message == ""
    assert_a_concurrent_transition_is_refused(
        order, PurchaseStates.PAID, PurchaseStates.PAID, message="m"
    )


def test_a_deferred_parent_table_state_is_checked_against_the_stored_row() -> None:
    order = GiftPurchase.objects.create(reference="g")
    order = GiftPurchase.objects.defer("state").get(pk=order.pk)
    order.state = PurchaseStates.SHIPPED
    order.message = "m"
    with pytest.raises(TransitionNotAllowedError):
        order.save()
    row = GiftPurchase.objects.get(pk=order.pk)
    assert (row.state, row.message) == (PurchaseStates.NEW, "")


# --- preset primary key plus preconditions -----------------------------------------------------


def test_a_preset_pk_of_no_row_with_preconditions_is_row_not_found() -> None:
    """Fixed: it raised RowDeletedError, "deleted since the instance was loaded"."""
    with pytest.raises(RowNotFoundError) as info:
        VersionedDoc(pk=9191, name="x").save(pre_filters={"version": 0})
    assert not isinstance(info.value, RowDeletedError)
    assert (info.value.model, info.value.pk) == (VersionedDoc, 9191)
    assert "no row with this primary key exists" in str(info.value)
    assert not VersionedDoc.objects.exists()


def test_a_preset_pk_of_an_existing_row_with_preconditions_updates_it() -> None:
    doc = VersionedDoc.objects.create(name="a", version=3)
    VersionedDoc(pk=doc.pk, name="b", version=4).save(pre_filters={"version": 3})
    assert VersionedDoc.objects.get(pk=doc.pk).name == "b"
    with pytest.raises(DatabaseUpdatePreconditionsError):
        VersionedDoc(pk=doc.pk, name="c", version=5).save(pre_filters={"version": 3})


def test_a_preset_pk_of_no_row_with_preconditions_on_a_multi_table_model() -> None:
    with pytest.raises(RowNotFoundError):
        VersionedChild(pk=777, name="x").save(pre_filters={"version": 0})
    assert not VersionedChild.objects.exists()
