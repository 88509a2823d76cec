from __future__ import annotations

from django.contrib import admin

from keel.fixtures.admin import FixtureEditsAdminMixin
from keel.site.admin import SingletonModelAdmin, StaticContentAdmin, StaticPageSeoAdmin

from .models import SiteSettings, StaticContent, StaticPageSeo

# No fieldsets: SingletonModelAdmin lays the form out by field group, the model's own fields
# first, then Contact, Social networks, Technical, Outgoing e-mail and CRM.
admin.site.register(SiteSettings, SingletonModelAdmin)


@admin.register(StaticContent)
class ShippedStaticContentAdmin(FixtureEditsAdminMixin, StaticContentAdmin):
    """Static content ships with fixtures: the change page says which fields an editor changed."""


@admin.register(StaticPageSeo)
class ShippedStaticPageSeoAdmin(FixtureEditsAdminMixin, StaticPageSeoAdmin):
    """Page SEO ships with fixtures too."""
