"""StateMachineAdminMixin: only allowed transitions, refusals as form errors, history."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from keel.signals import pre_state_transition
from tests.testapp.models.mixins_core import (
    Purchase,
    PurchaseStates,
    ReadOnlyStatePurchase,
    stored_row,
)

pytestmark = pytest.mark.django_db


def _purchase(state: str = PurchaseStates.NEW, reference: str = "p-1") -> Purchase:
    return stored_row(Purchase, reference=reference, state=state)


def _url(purchase: Purchase) -> str:
    return reverse("admin:testapp_purchase_change", args=[purchase.pk])


def _post(purchase: Purchase, **data: str) -> dict[str, str]:
    return {"reference": purchase.reference, "amount": str(purchase.amount), **data}


def _state_choices(response: Any) -> list[str]:
    return [value for value, _ in response.context["adminform"].form.fields["state"].choices]


@pytest.fixture
def clerk(client: Client) -> Client:
    """A staff user who may change purchases but not refund them."""
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_purchase", "change_purchase", "add_purchase"]
        )
    )
    client.force_login(user)
    return client


def test_the_change_form_offers_only_the_current_state_and_its_transitions(
    admin_client: Client,
) -> None:
    """Fixed: a plain ModelAdmin offered every state of the graph."""
    response = admin_client.get(_url(_purchase(PurchaseStates.PAID)))
    assert response.status_code == 200
    assert _state_choices(response) == [
        PurchaseStates.PAID,
        PurchaseStates.SHIPPED,
        PurchaseStates.REFUNDED,
    ]
    html = response.content.decode()
    assert 'name="_transition" value="shipped"' in html
    assert "Ship it" in html  # the Transition's label
    assert 'value="new"' not in html.split('name="_transition"', 1)[1].split("</div>", 1)[0]


def test_a_forbidden_state_is_a_form_error_not_a_server_error(admin_client: Client) -> None:
    """Fixed: picking a forbidden state was an HTTP 500 (TransitionNotAllowedError)."""
    purchase = _purchase()
    response = admin_client.post(_url(purchase), _post(purchase, state=PurchaseStates.SHIPPED))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["state"]
    assert Purchase.objects.get(pk=purchase.pk).state == PurchaseStates.NEW


def test_a_forbidden_transition_button_is_a_form_error(admin_client: Client) -> None:
    purchase = _purchase()
    response = admin_client.post(
        _url(purchase), _post(purchase, state=PurchaseStates.NEW, _transition="refunded")
    )
    assert response.status_code == 200
    assert "not declared" in str(response.context["adminform"].form.errors)
    assert Purchase.objects.get(pk=purchase.pk).state == PurchaseStates.NEW


def test_a_transition_button_moves_the_state_and_records_it_in_the_history(
    admin_client: Client,
) -> None:
    purchase = _purchase()
    response = admin_client.post(
        _url(purchase),
        _post(purchase, state=PurchaseStates.NEW, amount="12", _transition="paid"),
    )
    assert response.status_code == 302
    row = Purchase.objects.get(pk=purchase.pk)
    assert (row.state, row.amount) == (PurchaseStates.PAID, 12)
    entry = LogEntry.objects.get(object_id=str(purchase.pk))
    assert entry.get_change_message().startswith("State: New → Paid.")
    assert "Amount" in entry.get_change_message()


def test_choosing_an_allowed_state_in_the_field_is_recorded_too(admin_client: Client) -> None:
    purchase = _purchase()
    response = admin_client.post(_url(purchase), _post(purchase, state=PurchaseStates.PAID))
    assert response.status_code == 302
    assert Purchase.objects.get(pk=purchase.pk).state == PurchaseStates.PAID
    assert "State: New → Paid." in LogEntry.objects.get().get_change_message()


def test_a_concurrent_change_found_by_the_save_is_a_form_error(admin_client: Client) -> None:
    """The guarded UPDATE finds the row changed meanwhile: shown on the form, nothing saved."""
    purchase = _purchase()

    def concurrent(sender: type, instance: Any, **kwargs: Any) -> None:
        Purchase.objects.filter(pk=instance.pk).update(state=PurchaseStates.PAID, amount=99)

    pre_state_transition.connect(concurrent, sender=Purchase)
    try:
        response = admin_client.post(
            _url(purchase), _post(purchase, state=PurchaseStates.NEW, _transition="paid")
        )
    finally:
        pre_state_transition.disconnect(concurrent, sender=Purchase)
    assert response.status_code == 200
    assert "concurrent change" in str(response.context["adminform"].form.errors)
    row = Purchase.objects.get(pk=purchase.pk)
    assert (row.state, row.amount) == (PurchaseStates.NEW, 0)
    assert not LogEntry.objects.exists()


def test_a_transition_whose_condition_fails_is_not_offered(admin_client: Client) -> None:
    purchase = _purchase(PurchaseStates.PAID, reference="")
    response = admin_client.get(_url(purchase))
    assert PurchaseStates.SHIPPED not in _state_choices(response)
    response = admin_client.post(_url(purchase), _post(purchase, _transition="shipped"))
    assert response.status_code == 200
    assert "the purchase has a reference" in str(response.context["adminform"].form.errors)


def test_a_transition_needing_a_permission_is_refused_without_it(clerk: Client) -> None:
    purchase = _purchase(PurchaseStates.PAID)
    response = clerk.get(_url(purchase))
    assert _state_choices(response) == [PurchaseStates.PAID, PurchaseStates.SHIPPED]
    response = clerk.post(_url(purchase), _post(purchase, _transition="refunded"))
    assert response.status_code == 200
    assert "may not change the state" in str(response.context["adminform"].form.errors)
    assert Purchase.objects.get(pk=purchase.pk).state == PurchaseStates.PAID


def test_the_add_form_offers_only_the_initial_state(admin_client: Client) -> None:
    url = reverse("admin:testapp_purchase_add")
    assert _state_choices(admin_client.get(url)) == [PurchaseStates.NEW]
    response = admin_client.post(url, {"reference": "x", "amount": "0", "state": "paid"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["state"]
    assert not Purchase.objects.exists()


def test_changelist_actions_move_allowed_rows_and_report_the_others(
    admin_client: Client,
) -> None:
    movable = _purchase(PurchaseStates.NEW, reference="a")
    stuck = _purchase(PurchaseStates.SHIPPED, reference="b")
    response = admin_client.post(
        reverse("admin:testapp_purchase_changelist"),
        {"action": "keel_transition_paid", "_selected_action": [movable.pk, stuck.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert Purchase.objects.get(pk=movable.pk).state == PurchaseStates.PAID
    assert Purchase.objects.get(pk=stuck.pk).state == PurchaseStates.SHIPPED
    text = " ".join(str(m) for m in response.context["messages"])
    assert "1 moved." in text and "not declared" in text
    entry = LogEntry.objects.get(object_id=str(movable.pk))
    assert entry.get_change_message().startswith("State: New → Paid.")


def test_buttons_work_when_the_state_field_is_read_only(admin_client: Client) -> None:
    purchase = _purchase()
    url = reverse("admin:testapp_readonlystatepurchase_change", args=[purchase.pk])
    html = admin_client.get(url).content.decode()
    assert 'name="_transition" value="paid"' in html
    assert 'name="state"' not in html
    response = admin_client.post(url, {"reference": "p-1", "_transition": "paid"})
    assert response.status_code == 302
    assert ReadOnlyStatePurchase.objects.get(pk=purchase.pk).state == PurchaseStates.PAID
    response = admin_client.post(url, {"reference": "p-1", "_transition": "new"})
    assert response.status_code == 200
    assert "not declared" in str(response.context["adminform"].form.errors)


def test_enter_in_a_text_box_submits_save_not_a_transition(admin_client: Client) -> None:
    """A form submits with its first button: Django's Save comes before the transitions."""
    html = admin_client.get(_url(_purchase())).content.decode()
    assert html.index('name="_save"') < html.index('name="_transition"')
