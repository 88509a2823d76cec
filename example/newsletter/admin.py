from __future__ import annotations

from django.contrib import admin

from .models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("email", "state", "created_at", "confirmed_at")
    list_filter = ("state",)
    search_fields = ("email",)
    readonly_fields = ("created_at", "updated_at", "confirmed_at")
