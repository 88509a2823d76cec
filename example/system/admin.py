from __future__ import annotations

from django.contrib import admin

from keel.site.admin import SingletonModelAdmin, StaticContentAdmin, StaticPageSeoAdmin

from .models import SiteSettings, StaticContent, StaticPageSeo

# No fieldsets: SingletonModelAdmin lays the form out by field group, the model's own fields
# first, then Contact, Social networks, Technical, Outgoing e-mail and CRM.
admin.site.register(SiteSettings, SingletonModelAdmin)
admin.site.register(StaticContent, StaticContentAdmin)
admin.site.register(StaticPageSeo, StaticPageSeoAdmin)
