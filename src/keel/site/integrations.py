"""Integration state: public ids in plain fields, secrets in encrypted fields."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from keel.site.encryption import EncryptedCharField

__all__ = [
    "CrmIntegrationMixin",
    "ExtraConfigMixin",
    "GoogleIntegrationMixin",
    "MetaIntegrationMixin",
    "SevenIntegrationMixin",
    "StripeIntegrationMixin",
    "TwilioIntegrationMixin",
]


class GoogleIntegrationMixin(models.Model):
    google_maps_api_key = models.CharField(_("Google Maps browser key"), max_length=255, blank=True)
    google_business_id = models.CharField(_("Google Business id"), max_length=255, blank=True)
    google_recaptcha_site_key = models.CharField(
        _("reCAPTCHA site key"), max_length=255, blank=True
    )
    google_recaptcha_secret_key = EncryptedCharField(
        _("reCAPTCHA secret key"), max_length=255, blank=True
    )

    class Meta:
        abstract = True


class MetaIntegrationMixin(models.Model):
    """Meta app credentials; the pixel id lives in
    [`SiteMarketingSettingsMixin`][keel.site.SiteMarketingSettingsMixin]."""

    facebook_app_id = models.CharField(_("Meta app id"), max_length=255, blank=True)
    facebook_app_secret = EncryptedCharField(_("Meta app secret"), max_length=255, blank=True)

    class Meta:
        abstract = True


class StripeIntegrationMixin(models.Model):
    stripe_public_key = models.CharField(_("Stripe publishable key"), max_length=255, blank=True)
    stripe_secret_key = EncryptedCharField(_("Stripe secret key"), max_length=255, blank=True)
    stripe_webhook_secret = EncryptedCharField(
        _("Stripe webhook secret"), max_length=255, blank=True
    )

    class Meta:
        abstract = True


class CrmIntegrationMixin(models.Model):
    crm_api_url = models.URLField(_("CRM API URL"), max_length=500, blank=True)
    crm_api_key = EncryptedCharField(_("CRM API key"), max_length=500, blank=True)

    class Meta:
        abstract = True


class TwilioIntegrationMixin(models.Model):
    twilio_account_sid = models.CharField(_("Twilio account SID"), max_length=64, blank=True)
    twilio_from_number = models.CharField(_("Twilio sender number"), max_length=32, blank=True)
    twilio_whatsapp_from = models.CharField(_("Twilio WhatsApp sender"), max_length=32, blank=True)
    twilio_auth_token = EncryptedCharField(_("Twilio auth token"), max_length=255, blank=True)

    class Meta:
        abstract = True


class SevenIntegrationMixin(models.Model):
    seven_sender_id = models.CharField(_("seven.io sender id"), max_length=32, blank=True)
    seven_api_key = EncryptedCharField(_("seven.io API key"), max_length=255, blank=True)

    class Meta:
        abstract = True


class ExtraConfigMixin(models.Model):
    """Free-form public configuration (published: keep secrets out of it)."""

    extra_config = models.JSONField(_("extra configuration"), default=dict, blank=True)

    class Meta:
        abstract = True
