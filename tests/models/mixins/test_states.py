"""State machines: declaration, helpers, the transition guard and transition events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.test.utils import CaptureQueriesContext

from keel.exceptions import (
    DatabaseUpdatePreconditionsError,
    InvalidStateError,
    KeelError,
    TransitionNotAllowedError,
)
from keel.models.mixins import StateEnum, StateGraph
from keel.signals import post_state_transition
from tests.models.mixins.conftest import assert_a_concurrent_transition_is_refused, updates
from tests.testapp.models.mixins_core import (
    OnCommitTask,
    Task,
    TaskChild,
    TaskStates,
    Ticket,
    TicketStatus,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    def receiver(sender: type, **kwargs: Any) -> None:
        received.append({"sender": sender, **kwargs})

    post_state_transition.connect(receiver)
    yield received
    post_state_transition.disconnect(receiver)


def _task(state: str = TaskStates.NEW) -> Task:
    """A stored task in ``state`` (created in the initial state, then moved by an UPDATE)."""
    task = Task.objects.create(name="t")
    Task.objects.filter(pk=task.pk).update(state=state)
    return Task.objects.get(pk=task.pk)


# --- declaring states -----------------------------------------------------------------------


def test_state_enum_computes_its_sets() -> None:
    assert {"new", "running", "done", "canceled"} == TaskStates.ALL_STATES
    assert {"done", "canceled"} == TaskStates.FINAL_STATES
    assert TaskStates.INVERSE_TRANSITIONS["canceled"] == {"new", "running"}
    assert frozenset({"new", "running"}) == TaskStates.ACTIVE_STATES
    assert TaskStates.get("RUNNING") == "running"
    assert TaskStates.choices()[0] == ("new", "New")


def test_a_state_nobody_transits_to_has_no_sources_instead_of_key_error() -> None:
    """Fixed: get_transit_from raised KeyError for a state with no predecessor."""
    assert TaskStates.get_transit_from("new") == frozenset()


def test_transitions_to_an_undeclared_state_are_refused_at_class_definition() -> None:
    with pytest.raises(ImproperlyConfigured, match="'typo'"):

        class Broken(StateEnum):
            A = "a"
            TRANSITIONS = {A: {"typo"}}


def test_text_choices_with_a_transitions_map_and_a_custom_field_name() -> None:
    graph = Ticket.get_state_graph()
    assert graph.states == ("open", "in_review", "closed")
    assert graph.labels["in_review"] == "In review"
    assert graph.initial == "open"
    ticket = Ticket.objects.create(title="x")
    assert ticket.can_transit_to(TicketStatus.IN_REVIEW)
    assert not ticket.can_transit_to("nowhere")


def test_mermaid_export_lists_states_transitions_and_ends() -> None:
    text = Task.get_state_graph().to_mermaid(title="Task")
    assert text.startswith("---\ntitle: Task\n---\nstateDiagram-v2\n")
    assert "    [*] --> new\n" in text
    assert "    new --> running\n" in text
    assert "    done --> [*]\n" in text
    assert (
        TaskStates.to_mermaid()
        == StateGraph.build(
            TaskStates.graph().states,
            TaskStates.TRANSITIONS,
            labels=TaskStates.graph().labels,
            initial="new",
        ).to_mermaid()
    )


def test_mermaid_ids_are_safe_for_any_state_value() -> None:
    graph = StateGraph.build(["in progress", "2nd"], {"in progress": {"2nd"}})
    text = graph.to_mermaid()
    assert 'state "in progress" as in_progress' in text
    assert "s1_2nd" in text


def test_a_model_without_transitions_is_refused() -> None:
    from django.apps.registry import Apps

    from keel.models.mixins import StateTransitionPreconditionMixin

    with pytest.raises(ImproperlyConfigured, match="state_transitions"):

        class NoGraph(StateTransitionPreconditionMixin):
            states = TicketStatus
            state = models.CharField(max_length=20)

            class Meta:
                app_label = "testapp"
                apps = Apps()


# --- helpers ---------------------------------------------------------------------------------


def test_can_transit_to() -> None:
    task = _task()
    assert task.can_transit_to(TaskStates.RUNNING) is True
    assert task.can_transit_to(TaskStates.DONE) is False
    assert task.can_transit_to(TaskStates.NEW, noop_skip=True) is False
    with pytest.raises(TransitionNotAllowedError) as info:
        task.can_transit_to(TaskStates.DONE, fail=True)
    assert (info.value.source, info.value.target) == ("new", "done")
    assert isinstance(info.value, KeelError)


def test_can_transit_to_from_an_undeclared_state_does_not_raise_key_error() -> None:
    """Fixed: an unknown current state gave KeyError."""
    task = Task(name="x", state="bogus")
    assert task.can_transit_to("done") is False
    with pytest.raises(InvalidStateError):
        task.can_transit_to("done", fail=True)


def test_check_state_in() -> None:
    task = _task()
    assert task.check_state_in(TaskStates.ACTIVE_STATES)
    assert task.check_state_in("new")
    assert not task.check_state_in(["done"])
    with pytest.raises(InvalidStateError, match="expected one of 'done'"):
        task.check_state_in("done", fail=True)


# --- the guard -------------------------------------------------------------------------------


def test_a_save_that_does_not_change_the_state_is_not_guarded() -> None:
    """Fixed: the state guard was applied to every update (failing without a self-loop)."""
    task = _task(TaskStates.RUNNING)
    task.name = "renamed"
    with CaptureQueriesContext(connection) as ctx:
        task.save()
    (sql,) = [q["sql"] for q in ctx.captured_queries]
    assert "state" not in sql.split(" WHERE ")[1]
    task.name = "again"
    task.save(update_fields=["name"])
    assert Task.objects.get(pk=task.pk).name == "again"


def test_a_state_change_compares_and_sets_the_loaded_state_in_one_update() -> None:
    task = _task()
    task.state = TaskStates.RUNNING
    with CaptureQueriesContext(connection) as ctx:
        task.save()
    writes = updates(ctx)
    assert len(writes) == 1
    assert "state" in writes[0].split(" WHERE ")[1]
    assert Task.objects.get(pk=task.pk).state == "running"


def test_a_concurrent_transition_makes_the_save_fail_without_writing() -> None:
    task = _task()
    Task.objects.filter(pk=task.pk).update(state=TaskStates.RUNNING)
    task.state = TaskStates.CANCELED
    with pytest.raises(DatabaseUpdatePreconditionsError) as info:
        task.save()
    assert info.value.conditions["filters"] == {"state": "new"}
    assert Task.objects.get(pk=task.pk).state == "running"


def test_an_undeclared_transition_raises_before_any_query() -> None:
    task = _task()
    task.state = TaskStates.DONE
    with CaptureQueriesContext(connection) as ctx, pytest.raises(TransitionNotAllowedError):
        task.save()
    assert ctx.captured_queries == []


def test_check_state_false_skips_the_guard() -> None:
    task = _task()
    task.state = TaskStates.DONE
    task.save(check_state=False)
    assert Task.objects.get(pk=task.pk).state == "done"


def test_saving_an_undeclared_state_is_refused() -> None:
    with pytest.raises(InvalidStateError):
        Task(name="x", state="bogus").save()
    assert not Task.objects.exists()


def test_a_callers_precondition_on_the_state_replaces_the_automatic_one() -> None:
    task = _task()
    Task.objects.filter(pk=task.pk).update(name="other")
    task.state = TaskStates.RUNNING
    task.save(pre_filters={"state__in": ["new", "running"]})
    assert Task.objects.get(pk=task.pk).state == "running"


def test_guard_failures_leave_the_callers_transaction_usable() -> None:
    task = _task()
    Task.objects.filter(pk=task.pk).update(state=TaskStates.RUNNING)
    with transaction.atomic():
        task.state = TaskStates.CANCELED
        with pytest.raises(DatabaseUpdatePreconditionsError):
            task.save()
        Task.objects.create(name="after")
    assert Task.objects.filter(name="after").exists()


def test_multi_table_state_guard_checks_every_table() -> None:
    child = TaskChild.objects.create(detail="d")
    assert_a_concurrent_transition_is_refused(
        child, TaskStates.RUNNING, TaskStates.CANCELED, detail="changed"
    )


# --- events ----------------------------------------------------------------------------------


def test_event_fires_once_per_real_change(events: list[dict[str, Any]]) -> None:
    task = Task.objects.create(name="t")
    assert [(e["previous_state"], e["state"]) for e in events] == [(None, "new")]
    task.state = TaskStates.RUNNING
    task.save()
    assert events[-1]["previous_state"] == "new"
    assert events[-1]["state"] == "running"
    assert events[-1]["instance"] is task
    assert events[-1]["sender"] is Task
    assert len(events) == 2


def test_no_event_for_saves_that_do_not_change_the_state(events: list[dict[str, Any]]) -> None:
    """Fixed: transition events fired on every save, state changed or not."""
    task = _task()
    events.clear()
    task.name = "renamed"
    task.save()
    task.save()
    task.state = TaskStates.RUNNING
    task.save(update_fields=["name"])  # the state is not written: no transition happened
    assert events == []


def test_no_event_when_the_guarded_save_fails(events: list[dict[str, Any]]) -> None:
    task = _task()
    events.clear()
    Task.objects.filter(pk=task.pk).update(state=TaskStates.RUNNING)
    task.state = TaskStates.CANCELED
    with pytest.raises(DatabaseUpdatePreconditionsError):
        task.save()
    assert events == []


def test_custom_state_field_events(events: list[dict[str, Any]]) -> None:
    ticket = Ticket.objects.create(title="x")
    ticket = Ticket.objects.get(pk=ticket.pk)
    events.clear()
    ticket.status = TicketStatus.CLOSED
    ticket.save()
    assert [(e["previous_state"], e["state"]) for e in events] == [("open", "closed")]


def test_deferred_state_costs_no_query_per_row() -> None:
    """Fixed: reading the state in __init__ cost one query per row when deferred."""
    for i in range(3):
        Task.objects.create(name=f"t{i}")
    with CaptureQueriesContext(connection) as ctx:
        list(Task.objects.defer("state"))
    assert len(ctx.captured_queries) == 1


@pytest.mark.django_db(transaction=True)
def test_on_commit_events_wait_for_the_commit(events: list[dict[str, Any]]) -> None:
    with transaction.atomic():
        task = OnCommitTask.objects.create()
        task.state = TaskStates.RUNNING
        task.save()
        assert events == []
    assert [(e["previous_state"], e["state"]) for e in events] == [
        (None, "new"),
        ("new", "running"),
    ]


@pytest.mark.django_db(transaction=True)
def test_on_commit_events_are_dropped_on_rollback(events: list[dict[str, Any]]) -> None:
    task = OnCommitTask.objects.create()
    events.clear()

    def transition_then_roll_back() -> None:
        with transaction.atomic():
            task.state = TaskStates.RUNNING
            task.save()
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        transition_then_roll_back()
    assert events == []
