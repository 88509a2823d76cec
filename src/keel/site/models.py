"""Abstract models of a project's state: site settings, static content, page SEO, profiles.

A project composes its concrete models from these (they are all abstract)::

    class SiteSettings(SiteContactSettingsMixin, SiteEmailIdentityMixin, AbstractSiteSettings):
        pass

This module is their public home; they live in ``keel.site.base`` (cached models and the
singleton), ``keel.site.groups`` (field groups), ``keel.site.integrations``,
``keel.site.content`` (static content and page SEO) and ``keel.profiles.models``. Reads
of cached models go through ``keel.site.cache``; every way of writing them publishes on
commit (see ``keel.site.publish``).
"""

from __future__ import annotations

from keel.profiles.models import AbstractUserProfile, normalize_phone
from keel.site.base import (
    AbstractSiteSettings,
    CachedModelMixin,
    PublishingQuerySet,
    SingletonDeletionError,
    SingletonQuerySet,
    SiteSettingsSyncMixin,
)
from keel.site.content import AbstractStaticContent, AbstractStaticPageSeo, LanguageRowsModel
from keel.site.groups import (
    SiteContactSettingsMixin,
    SiteEmailIdentityMixin,
    SiteGeoSettingsMixin,
    SiteMarketingSettingsMixin,
    SiteSocialSettingsMixin,
    SiteTechnicalSettingsMixin,
)
from keel.site.integrations import (
    CrmIntegrationMixin,
    ExtraConfigMixin,
    GoogleIntegrationMixin,
    MetaIntegrationMixin,
    SevenIntegrationMixin,
    StripeIntegrationMixin,
    TwilioIntegrationMixin,
)
from keel.validators import IMAGE_EXTENSIONS, no_newlines

__all__ = [
    "IMAGE_EXTENSIONS",
    "AbstractSiteSettings",
    "AbstractStaticContent",
    "AbstractStaticPageSeo",
    "AbstractUserProfile",
    "CachedModelMixin",
    "CrmIntegrationMixin",
    "ExtraConfigMixin",
    "GoogleIntegrationMixin",
    "LanguageRowsModel",
    "MetaIntegrationMixin",
    "PublishingQuerySet",
    "SevenIntegrationMixin",
    "SingletonDeletionError",
    "SingletonQuerySet",
    "SiteContactSettingsMixin",
    "SiteEmailIdentityMixin",
    "SiteGeoSettingsMixin",
    "SiteMarketingSettingsMixin",
    "SiteSettingsSyncMixin",
    "SiteSocialSettingsMixin",
    "SiteTechnicalSettingsMixin",
    "StripeIntegrationMixin",
    "TwilioIntegrationMixin",
    "no_newlines",
    "normalize_phone",
]
