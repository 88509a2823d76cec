"""StateMachineAdminMixin with the state in ``list_editable``: the same rules as the form."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from keel.admin import StateMachineAdminMixin
from tests.testapp.models.mixins_core import Purchase, PurchaseStates, stored_row

pytestmark = pytest.mark.django_db


class EditablePurchaseAdmin(StateMachineAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("reference", "state")
    list_editable = ("state",)


def _admin() -> EditablePurchaseAdmin:
    return EditablePurchaseAdmin(Purchase, admin.AdminSite(name="changelist_admin"))


def _request(user: User, data: dict[str, str] | None = None) -> Any:
    factory = RequestFactory()
    request = factory.post("/", data) if data is not None else factory.get("/")
    request.user = user
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    request._dont_enforce_csrf_checks = True
    return request


def _root() -> User:
    return User.objects.create_superuser("root", "root@example.com", "pw")


def _root_user() -> User:
    return User.objects.get(username="root")


def _row_data(pk: int, state: str) -> dict[str, str]:
    return {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(pk),
        "form-0-state": state,
        "_save": "Save",
    }


def test_each_row_offers_its_current_state_and_its_transitions() -> None:
    purchase = stored_row(Purchase, reference="p-1", state=PurchaseStates.NEW)
    response = _admin().changelist_view(_request(_root()))
    form = response.context_data["cl"].formset.forms[0]
    assert form.instance.pk == purchase.pk
    offered = [value for value, _ in form.fields["state"].choices]
    assert offered == [PurchaseStates.NEW, *purchase.get_available_transitions(_root_user())]
    assert PurchaseStates.SHIPPED not in offered


def test_a_forbidden_state_is_a_form_error_not_a_server_error() -> None:
    purchase = stored_row(Purchase, reference="p-1", state=PurchaseStates.NEW)
    response = _admin().changelist_view(
        _request(_root(), _row_data(purchase.pk, PurchaseStates.SHIPPED))
    )
    assert response.status_code == 200
    assert response.context_data["cl"].formset.errors[0]["state"]
    assert Purchase.objects.get(pk=purchase.pk).state == PurchaseStates.NEW


def test_a_user_without_the_transition_permission_cannot_make_it() -> None:
    purchase = stored_row(Purchase, reference="p-1", state=PurchaseStates.PAID)
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_purchase", "change_purchase"])
    )
    clerk = User.objects.get(pk=clerk.pk)
    assert not clerk.has_perm("testapp.refund_purchase")
    response = _admin().changelist_view(
        _request(clerk, _row_data(purchase.pk, PurchaseStates.REFUNDED))
    )
    assert response.status_code == 200
    assert Purchase.objects.get(pk=purchase.pk).state == PurchaseStates.PAID


def test_an_allowed_transition_is_saved() -> None:
    purchase = stored_row(Purchase, reference="p-1", state=PurchaseStates.NEW)
    response = _admin().changelist_view(
        _request(_root(), _row_data(purchase.pk, PurchaseStates.PAID))
    )
    assert response.status_code == 302
    assert Purchase.objects.get(pk=purchase.pk).state == PurchaseStates.PAID
