"""Integration state: public ids in plain fields, secrets in encrypted fields."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.utils.translation import gettext_lazy as _

from keel.site.encryption import EncryptedCharField

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

__all__ = [
    "CrmIntegrationMixin",
    "ExtraConfigMixin",
    "GoogleIntegrationMixin",
    "MetaIntegrationMixin",
    "SevenIntegrationMixin",
    "StripeIntegrationMixin",
    "TwilioIntegrationMixin",
]


def _public(label: StrOrPromise, max_length: int = 255) -> models.CharField[str, str]:
    """A public id: published and shown to templates."""
    return models.CharField(label, max_length=max_length, blank=True)


def _secret(label: StrOrPromise, max_length: int = 255) -> EncryptedCharField:
    """A secret: encrypted at rest, never published."""
    return EncryptedCharField(label, max_length=max_length, blank=True)


class GoogleIntegrationMixin(models.Model):
    google_maps_api_key = _public(_("Google Maps browser key"))
    google_business_id = _public(_("Google Business id"))
    google_recaptcha_site_key = _public(_("reCAPTCHA site key"))
    google_recaptcha_secret_key = _secret(_("reCAPTCHA secret key"))

    class Meta:
        abstract = True


class MetaIntegrationMixin(models.Model):
    """Meta app credentials; the pixel id lives in
    [`SiteMarketingSettingsMixin`][keel.site.SiteMarketingSettingsMixin]."""

    facebook_app_id = _public(_("Meta app id"))
    facebook_app_secret = _secret(_("Meta app secret"))

    class Meta:
        abstract = True


class StripeIntegrationMixin(models.Model):
    stripe_public_key = _public(_("Stripe publishable key"))
    stripe_secret_key = _secret(_("Stripe secret key"))
    stripe_webhook_secret = _secret(_("Stripe webhook secret"))

    class Meta:
        abstract = True


class CrmIntegrationMixin(models.Model):
    crm_api_url = models.URLField(_("CRM API URL"), max_length=500, blank=True)
    crm_api_key = _secret(_("CRM API key"), 500)

    class Meta:
        abstract = True


class TwilioIntegrationMixin(models.Model):
    twilio_account_sid = _public(_("Twilio account SID"), 64)
    twilio_from_number = _public(_("Twilio sender number"), 32)
    twilio_whatsapp_from = _public(_("Twilio WhatsApp sender"), 32)
    twilio_auth_token = _secret(_("Twilio auth token"))

    class Meta:
        abstract = True


class SevenIntegrationMixin(models.Model):
    seven_sender_id = _public(_("seven.io sender id"), 32)
    seven_api_key = _secret(_("seven.io API key"))

    class Meta:
        abstract = True


class ExtraConfigMixin(models.Model):
    """Free-form public configuration (published: keep secrets out of it)."""

    extra_config = models.JSONField(_("extra configuration"), default=dict, blank=True)

    class Meta:
        abstract = True
