"""The project's state: one SiteSettings row, static text snippets and per-page SEO.

Each model is a concrete subclass of keel's abstract models; keel caches them (request memo,
process copy, one shared-store read, then the database) and publishes every write on commit.
"""

from __future__ import annotations

from django.db import models

from keel.site.models import (
    AbstractSiteSettings,
    AbstractStaticContent,
    AbstractStaticPageSeo,
    CrmIntegrationMixin,
    SiteContactSettingsMixin,
    SiteEmailIdentityMixin,
    SiteSocialSettingsMixin,
    SiteTechnicalSettingsMixin,
)


class SiteSettings(
    SiteContactSettingsMixin,  # phone, email, address, working hours
    SiteSocialSettingsMixin,  # instagram_url, youtube_url, ...
    SiteTechnicalSettingsMixin,  # maintenance_mode, head/body scripts
    SiteEmailIdentityMixin,  # email_from, email_sender_name, email_reply_to
    CrmIntegrationMixin,  # crm_api_url, crm_api_key (encrypted, never cached)
    AbstractSiteSettings,
):
    """The one row of site-wide settings (``SiteSettings.load()``)."""

    site_name = models.CharField(max_length=100, default="keel example")
    tagline = models.CharField(max_length=200, blank=True)
    newsletter_enabled = models.BooleanField(default=True)


class StaticContent(AbstractStaticContent):
    """Text snippets by key and language (``{% static_text "footer" %}``)."""


class StaticPageSeo(AbstractStaticPageSeo):
    """Title and description of each page (``{% page_seo "home" as seo %}``)."""
