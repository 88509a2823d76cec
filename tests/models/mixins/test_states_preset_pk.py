"""Saves of a new instance with a preset primary key: the state guard reads the stored row."""

from __future__ import annotations

import pytest
from django.db import transaction

from keel.exceptions import TransitionNotAllowedError
from tests.testapp.models.mixins_core import (
    OnCommitTask,
    Purchase,
    PurchaseStates,
    Task,
    TaskChild,
    TaskParent,
    TaskStates,
    UuidTask,
    stored_row,
)


@pytest.mark.django_db
@pytest.mark.parametrize("options", [{"force_update": True}, {"update_fields": ["state"]}])
def test_a_forced_update_of_a_pk_with_a_default_is_guarded(options: dict[str, object]) -> None:
    """A primary key with a default makes Django insert, unless the update is forced: the
    guard must then read the stored state."""
    task = stored_row(UuidTask, state=TaskStates.DONE)  # final
    with pytest.raises(TransitionNotAllowedError) as caught:
        UuidTask(pk=task.pk, state=TaskStates.NEW).save(**options)
    assert caught.value.source == TaskStates.DONE
    assert UuidTask.objects.get(pk=task.pk).state == TaskStates.DONE


@pytest.mark.django_db
def test_a_forced_update_of_a_pk_with_a_default_may_make_a_declared_transition() -> None:
    task = stored_row(UuidTask, state=TaskStates.NEW)
    UuidTask(pk=task.pk, state=TaskStates.RUNNING).save(force_update=True)
    assert UuidTask.objects.get(pk=task.pk).state == TaskStates.RUNNING


@pytest.mark.django_db
def test_a_child_row_added_to_an_existing_parent_cannot_reset_its_state() -> None:
    """Multi-table inheritance: Django updates the parent row, then inserts the child's."""
    parent = stored_row(TaskParent, state=TaskStates.RUNNING)
    with pytest.raises(TransitionNotAllowedError) as caught:  # running -> new: not declared
        TaskChild(taskparent_ptr=parent, state=TaskStates.NEW).save()
    assert caught.value.source == TaskStates.RUNNING
    assert TaskParent.objects.get(pk=parent.pk).state == TaskStates.RUNNING
    assert not TaskChild.objects.filter(pk=parent.pk).exists()


@pytest.mark.django_db
def test_a_child_row_added_to_an_existing_parent_may_make_a_declared_transition() -> None:
    parent = stored_row(TaskParent, state=TaskStates.RUNNING)
    TaskChild(taskparent_ptr=parent, state=TaskStates.DONE, detail="d").save()
    child = TaskChild.objects.get(pk=parent.pk)
    assert (child.state, child.detail) == (TaskStates.DONE, "d")


@pytest.mark.django_db
def test_a_preset_pk_save_that_does_not_write_the_state_is_not_refused() -> None:
    """The state the new instance holds is its field default; it is not written."""
    task = stored_row(Task, name="t", state=TaskStates.RUNNING)
    Task(pk=task.pk, name="renamed").save(update_fields=["name"])
    row = Task.objects.get(pk=task.pk)
    assert (row.name, row.state) == ("renamed", TaskStates.RUNNING)


class Boom(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_field_written_only_by_the_second_rolled_back_save_is_still_dirty() -> None:
    """Two saves in one rolled-back block: the retry writes the columns of both."""
    purchase = stored_row(Purchase, reference="r")

    def two_saves_then_fail() -> None:
        with transaction.atomic():
            purchase.state = PurchaseStates.PAID
            purchase.save()
            purchase.reference = "r2"
            purchase.save()
            raise Boom

    with pytest.raises(Boom):
        two_saves_then_fail()
    assert purchase.has_changed("state")
    assert purchase.has_changed("reference")
    purchase.save()
    row = Purchase.objects.get(pk=purchase.pk)
    assert (row.state, row.reference) == (PurchaseStates.PAID, "r2")


@pytest.fixture
def stored_task(transition_events: list[tuple[object, object]]) -> OnCommitTask:
    """A stored ``OnCommitTask``, its creation's events forgotten."""
    task = OnCommitTask.objects.create()
    transition_events.clear()
    return task


@pytest.mark.django_db(transaction=True)
def test_a_deferred_state_saved_unchanged_sends_no_event(
    stored_task: OnCommitTask, transition_events: list[tuple[object, object]]
) -> None:
    """The events mixin alone: the stored state is read, and it is not changed."""
    task = OnCommitTask.objects.only("id").get(pk=stored_task.pk)
    task.state = TaskStates.NEW  # the stored state
    task.save()
    assert OnCommitTask.objects.get(pk=task.pk).state == TaskStates.NEW
    assert transition_events == []


@pytest.mark.django_db(transaction=True)
def test_the_source_of_a_deferred_state_change_is_the_stored_state(
    stored_task: OnCommitTask, transition_events: list[tuple[object, object]]
) -> None:
    task = OnCommitTask.objects.only("id").get(pk=stored_task.pk)
    task.state = TaskStates.RUNNING
    task.save()
    assert transition_events == [(TaskStates.NEW, TaskStates.RUNNING)]


@pytest.mark.django_db(transaction=True)
def test_a_preset_pk_save_of_an_existing_row_is_not_a_creation(
    stored_task: OnCommitTask, transition_events: list[tuple[object, object]]
) -> None:
    task = stored_task
    OnCommitTask(pk=task.pk, state=TaskStates.NEW).save()  # updates the existing row
    assert OnCommitTask.objects.count() == 1
    assert transition_events == []
    OnCommitTask(pk=task.pk, state=TaskStates.RUNNING).save()
    assert transition_events == [(TaskStates.NEW, TaskStates.RUNNING)]
