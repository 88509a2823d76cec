"""Project state: site settings singletons, static content, page SEO, integrations.

``import keel.site`` does not import models (it works before the app registry is ready); the
names below are loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.site.cache import request_scope
    from keel.site.email import format_address
    from keel.site.encryption import (
        DecryptionError,
        EncryptedCharField,
        EncryptedTextField,
        reencrypt,
    )
    from keel.site.models import (
        AbstractSiteSettings,
        AbstractStaticContent,
        AbstractStaticPageSeo,
        AbstractUserProfile,
        CrmIntegrationMixin,
        ExtraConfigMixin,
        GoogleIntegrationMixin,
        MetaIntegrationMixin,
        SevenIntegrationMixin,
        SingletonDeletionError,
        SiteContactSettingsMixin,
        SiteEmailIdentityMixin,
        SiteGeoSettingsMixin,
        SiteMarketingSettingsMixin,
        SiteSettingsSyncMixin,
        SiteSocialSettingsMixin,
        SiteTechnicalSettingsMixin,
        StripeIntegrationMixin,
        TwilioIntegrationMixin,
    )

__all__ = [
    "AbstractSiteSettings",
    "AbstractStaticContent",
    "AbstractStaticPageSeo",
    "AbstractUserProfile",
    "CrmIntegrationMixin",
    "DecryptionError",
    "EncryptedCharField",
    "EncryptedTextField",
    "ExtraConfigMixin",
    "GoogleIntegrationMixin",
    "MetaIntegrationMixin",
    "SevenIntegrationMixin",
    "SingletonDeletionError",
    "SiteContactSettingsMixin",
    "SiteEmailIdentityMixin",
    "SiteGeoSettingsMixin",
    "SiteMarketingSettingsMixin",
    "SiteSettingsSyncMixin",
    "SiteSocialSettingsMixin",
    "SiteTechnicalSettingsMixin",
    "StripeIntegrationMixin",
    "TwilioIntegrationMixin",
    "format_address",
    "reencrypt",
    "request_scope",
]

_HOMES = {
    "request_scope": "keel.site.cache",
    "format_address": "keel.site.email",
    "DecryptionError": "keel.site.encryption",
    "EncryptedCharField": "keel.site.encryption",
    "EncryptedTextField": "keel.site.encryption",
    "reencrypt": "keel.site.encryption",
    "AbstractUserProfile": "keel.profiles.models",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'keel.site' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES.get(name, "keel.site.models")), name)
    globals()[name] = value
    return value
