from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from keel.admin import StateMachineAdminMixin
from keel.exceptions import KeelError

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
    actions = ["unsubscribe"]

    @admin.action(description="Unsubscribe the selected subscriptions")
    def unsubscribe(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        done = refused = 0
        for subscription in queryset:
            try:
                subscription.unsubscribe()
            except KeelError:  # already unsubscribed, or changed meanwhile
                refused += 1
            else:
                done += 1
        self.message_user(request, f"{done} unsubscribed.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"{refused} left alone (not allowed).", messages.WARNING)
