from __future__ import annotations

from django.contrib import admin

from keel.fixtures.admin import FixtureEditsAdminMixin
from keel.site.admin import SingletonModelAdmin, StaticContentAdmin, StaticPageSeoAdmin

from .models import SiteSettings, StaticContent, StaticPageSeo


@admin.register(SiteSettings)
class SiteSettingsAdmin(SingletonModelAdmin):
    fieldsets = [
        (None, {"fields": ["site_name", "tagline", "newsletter_enabled"]}),
        ("Contact", {"fields": ["email", "phone", "address_street", "address_locality"]}),
        ("Emails", {"fields": ["email_from", "email_sender_name", "email_reply_to"]}),
        ("Social", {"fields": ["instagram_url", "youtube_url"]}),
        ("CRM integration", {"fields": ["crm_api_url", "crm_api_key"]}),
        ("Maintenance", {"fields": ["maintenance_mode", "maintenance_message"]}),
    ]


@admin.register(StaticContent)
class ShippedStaticContentAdmin(FixtureEditsAdminMixin, StaticContentAdmin):
    """Static content ships with fixtures: the change page says which fields an editor changed."""


@admin.register(StaticPageSeo)
class ShippedStaticPageSeoAdmin(FixtureEditsAdminMixin, StaticPageSeoAdmin):
    """Page SEO ships with fixtures too."""
