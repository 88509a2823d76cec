from __future__ import annotations

from django.contrib import admin

from keel.admin import StateMachineAdminMixin

from .models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(StateMachineAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The state field offers only the transitions allowed from the current state; each one
    also has a button on the change form and an action on the list; a refused transition is
    a form error; every transition is written to the object's history."""

    list_display = ("email", "state", "created_at", "confirmed_at")
    list_filter = ("state",)
    search_fields = ("email",)
    readonly_fields = ("created_at", "updated_at", "confirmed_at")
