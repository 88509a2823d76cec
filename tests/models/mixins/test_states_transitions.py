"""Transitions in code: available transitions, conditions, permissions, pre/post signals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import models

from keel.exceptions import TransitionNotAllowedError
from keel.models.mixins import StateTransitionPreconditionMixin, Transition
from keel.signals import post_state_transition, pre_state_transition
from tests.testapp.models.mixins_core import Purchase, PurchaseStates, Task, TaskStates, stored_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def signals() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    received: list[tuple[str, dict[str, Any]]] = []

    def pre(sender: type, **kwargs: Any) -> None:
        received.append(("pre", {k: kwargs[k] for k in ("source", "target", "using")}))

    def post(sender: type, **kwargs: Any) -> None:
        received.append(("post", {k: kwargs[k] for k in ("source", "target", "using")}))

    pre_state_transition.connect(pre)
    post_state_transition.connect(post)
    yield received
    pre_state_transition.disconnect(pre)
    post_state_transition.disconnect(post)


def _purchase(state: str, reference: str = "p") -> Purchase:
    return stored_row(Purchase, reference=reference, state=state)


def _user(*codenames: str) -> User:
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # fresh permission cache


def test_available_transitions_follow_the_graph_in_declaration_order() -> None:
    task = Task(name="t")
    assert task.get_available_transitions() == [TaskStates.RUNNING, TaskStates.CANCELED]
    task.state = TaskStates.DONE
    assert task.get_available_transitions() == []


def test_available_transitions_leave_out_unmet_conditions() -> None:
    assert _purchase(PurchaseStates.PAID, reference="").get_available_transitions() == [
        PurchaseStates.REFUNDED
    ]
    assert _purchase(PurchaseStates.PAID).get_available_transitions() == [
        PurchaseStates.SHIPPED,
        PurchaseStates.REFUNDED,
    ]


def test_available_transitions_for_a_user_leave_out_missing_permissions() -> None:
    purchase = _purchase(PurchaseStates.PAID)
    assert purchase.get_available_transitions(_user()) == [PurchaseStates.SHIPPED]
    allowed = purchase.get_available_transitions(_user("refund_purchase"))
    assert allowed == [PurchaseStates.SHIPPED, PurchaseStates.REFUNDED]
    assert purchase.get_available_transitions(AnonymousUser()) == [PurchaseStates.SHIPPED]


def test_check_transition_for_views() -> None:
    purchase = _purchase(PurchaseStates.PAID)
    purchase.check_transition(PurchaseStates.SHIPPED, user=_user())
    with pytest.raises(PermissionDenied, match="refunded"):
        purchase.check_transition(PurchaseStates.REFUNDED, user=_user())
    with pytest.raises(TransitionNotAllowedError, match="not declared"):
        purchase.check_transition(PurchaseStates.NEW)
    purchase.check_transition(PurchaseStates.REFUNDED)  # no user: permission not checked


def test_an_unmet_condition_refuses_the_save_and_names_the_condition() -> None:
    purchase = _purchase(PurchaseStates.PAID, reference="")
    purchase.state = PurchaseStates.SHIPPED
    with pytest.raises(TransitionNotAllowedError) as info:
        purchase.save()
    assert info.value.reason == "condition not met: the purchase has a reference"
    assert "the purchase has a reference" in str(info.value)
    assert Purchase.objects.get(pk=purchase.pk).state == PurchaseStates.PAID


def test_can_transit_to_checks_conditions() -> None:
    purchase = _purchase(PurchaseStates.PAID, reference="")
    assert not purchase.can_transit_to(PurchaseStates.SHIPPED)
    with pytest.raises(TransitionNotAllowedError, match="condition not met"):
        purchase.can_transit_to(PurchaseStates.SHIPPED, fail=True)


def test_pre_and_post_signals_carry_source_and_target(
    signals: list[tuple[str, dict[str, Any]]],
) -> None:
    task = Task.objects.create(name="t")
    task.state = TaskStates.RUNNING
    task.save()
    assert signals == [
        ("pre", {"source": None, "target": TaskStates.NEW, "using": "default"}),
        ("post", {"source": None, "target": TaskStates.NEW, "using": "default"}),
        ("pre", {"source": TaskStates.NEW, "target": TaskStates.RUNNING, "using": "default"}),
        ("post", {"source": TaskStates.NEW, "target": TaskStates.RUNNING, "using": "default"}),
    ]
    signals.clear()
    task.name = "renamed"
    task.save()
    assert signals == []


def test_a_pre_transition_receiver_that_raises_stops_the_save() -> None:
    task = Task.objects.create(name="t")

    def veto(sender: type, **kwargs: Any) -> None:
        raise PermissionDenied("vetoed")

    task.state = TaskStates.RUNNING
    pre_state_transition.connect(veto)
    try:
        with pytest.raises(PermissionDenied):
            task.save()
    finally:
        pre_state_transition.disconnect(veto)
    assert Task.objects.get(pk=task.pk).state == TaskStates.NEW


def test_pre_signal_of_a_deferred_state_carries_the_stored_source(
    signals: list[tuple[str, dict[str, Any]]],
) -> None:
    Task.objects.bulk_create([Task(name="t")])
    task = Task.objects.defer("state").get()
    task.state = TaskStates.CANCELED
    task.save()
    assert [s for s, _ in signals] == ["pre", "post"]
    assert all(d["source"] == TaskStates.NEW for _, d in signals)


def test_rules_must_name_declared_transitions() -> None:
    with pytest.raises(ImproperlyConfigured, match="state_transition_rules"):

        class BadRules(StateTransitionPreconditionMixin):
            states = PurchaseStates
            state_transition_rules = {
                (PurchaseStates.NEW, PurchaseStates.SHIPPED): Transition(label="x")
            }
            state = models.CharField(max_length=20, default=PurchaseStates.NEW)

            class Meta:
                app_label = "testapp"
