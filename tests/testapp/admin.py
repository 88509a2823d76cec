"""Admin of the test project: a state-machine model with keel's admin mixin."""

from __future__ import annotations

from django.contrib import admin

from keel.admin import StateMachineAdminMixin
from tests.testapp.models.mixins_core import Purchase, ReadOnlyStatePurchase


@admin.register(Purchase)
class PurchaseAdmin(StateMachineAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("reference", "state")
    fields = ("reference", "amount", "state")


@admin.register(ReadOnlyStatePurchase)
class ReadOnlyStatePurchaseAdmin(StateMachineAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    fields = ("reference", "state")
    readonly_fields = ("state",)
