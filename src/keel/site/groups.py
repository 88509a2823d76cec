"""The field groups a site-settings model is composed of (contact, geo, social, marketing,
technical, email identity)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.utils.translation import gettext_lazy as _

from keel.site.email import format_address
from keel.validators import no_newlines

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

__all__ = [
    "SiteContactSettingsMixin",
    "SiteEmailIdentityMixin",
    "SiteGeoSettingsMixin",
    "SiteMarketingSettingsMixin",
    "SiteSocialSettingsMixin",
    "SiteTechnicalSettingsMixin",
]


class SiteContactSettingsMixin(models.Model):
    """Public contact details."""

    phone = models.CharField(_("phone"), max_length=50, blank=True)
    email = models.EmailField(_("email"), blank=True)
    address_street = models.CharField(_("street address"), max_length=255, blank=True)
    address_locality = models.CharField(_("city"), max_length=255, blank=True)
    address_postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    address_country = models.CharField(_("country"), max_length=100, blank=True)
    contact_person = models.CharField(_("contact person"), max_length=255, blank=True)
    working_hours = models.TextField(_("working hours"), blank=True)

    template_methods: ClassVar[tuple[str, ...]] = ("get_address",)

    class Meta:
        abstract = True

    def get_address(self) -> str:
        """The address parts that are set, comma-separated."""
        parts = (self.address_street, self.address_postal_code, self.address_locality)
        return ", ".join(p for p in (*parts, self.address_country) if p)


def _coordinate(
    label: StrOrPromise, limit: int
) -> models.DecimalField[Decimal | None, Decimal | None]:
    """Degrees from ``-limit`` to ``limit``, to six places (about 10 cm), or empty."""
    return models.DecimalField(
        label,
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(-limit)), MaxValueValidator(Decimal(limit))],
    )


class SiteGeoSettingsMixin(models.Model):
    """Map link and coordinates (decimal degrees, validated ranges, both or neither)."""

    google_maps_link = models.URLField(_("map link"), max_length=500, blank=True)
    latitude = _coordinate(_("latitude"), 90)
    longitude = _coordinate(_("longitude"), 180)

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        if (self.latitude is None) != (self.longitude is None):
            missing = "longitude" if self.longitude is None else "latitude"
            raise ValidationError({missing: _("Give both coordinates or neither.")})


class SiteSocialSettingsMixin(models.Model):
    """Links to the site's social profiles."""

    instagram_url = models.URLField(_("Instagram"), max_length=500, blank=True)
    facebook_url = models.URLField(_("Facebook"), max_length=500, blank=True)
    telegram_url = models.URLField(_("Telegram"), max_length=500, blank=True)
    whatsapp_url = models.URLField(_("WhatsApp"), max_length=500, blank=True)
    youtube_url = models.URLField(_("YouTube"), max_length=500, blank=True)
    linkedin_url = models.URLField(_("LinkedIn"), max_length=500, blank=True)
    tiktok_url = models.URLField(_("TikTok"), max_length=500, blank=True)
    twitter_url = models.URLField(_("X (Twitter)"), max_length=500, blank=True)
    pinterest_url = models.URLField(_("Pinterest"), max_length=500, blank=True)

    SOCIAL_FIELDS: ClassVar[tuple[str, ...]] = (
        "instagram_url",
        "facebook_url",
        "telegram_url",
        "whatsapp_url",
        "youtube_url",
        "linkedin_url",
        "tiktok_url",
        "twitter_url",
        "pinterest_url",
    )

    template_methods: ClassVar[tuple[str, ...]] = ("social_links",)

    class Meta:
        abstract = True

    def social_links(self) -> list[tuple[str, str]]:
        """``[(network, url)]`` of the links that are set, in a stable order."""
        return [
            (name.removesuffix("_url"), getattr(self, name))
            for name in self.SOCIAL_FIELDS
            if getattr(self, name)
        ]


def _tracking_id(
    label: StrOrPromise, pattern: str, message: StrOrPromise
) -> models.CharField[str, str]:
    """A public tracking id field: up to 50 characters matching ``pattern``."""
    return models.CharField(
        label, max_length=50, blank=True, validators=[RegexValidator(pattern, message)]
    )


class SiteMarketingSettingsMixin(models.Model):
    """Public tracking ids (validated, so they are safe to put into a script tag)."""

    google_analytics_id = _tracking_id(
        _("Google Analytics id"), r"^((G|UA|AW)-[A-Z0-9-]+)?$", _("Like G-XXXXXXX.")
    )
    google_tag_manager_id = _tracking_id(
        _("Google Tag Manager id"), r"^(GTM-[A-Z0-9]+)?$", _("Like GTM-XXXXXX.")
    )
    facebook_pixel_id = _tracking_id(_("Meta pixel id"), r"^[0-9]*$", _("Digits only."))
    tiktok_pixel_id = _tracking_id(
        _("TikTok pixel id"), r"^[A-Za-z0-9_-]*$", _("Letters, digits, - and _ only.")
    )

    class Meta:
        abstract = True


class SiteTechnicalSettingsMixin(models.Model):
    """Maintenance mode (enforced by
    [`keel.site.middleware.MaintenanceModeMiddleware`][keel.site.middleware.MaintenanceModeMiddleware])
    and snippets added to every page (trusted input: only give the permission to edit these settings
    to people you would give a deploy to)."""

    maintenance_mode = models.BooleanField(_("maintenance mode"), default=False)
    maintenance_message = models.TextField(_("maintenance message"), blank=True)
    head_scripts = models.TextField(_("scripts in <head>"), blank=True)
    body_scripts = models.TextField(_("scripts at the end of <body>"), blank=True)

    class Meta:
        abstract = True


class SiteEmailIdentityMixin(models.Model):
    """Who the site's emails come from.
    [`get_from_email`][keel.site.groups.SiteEmailIdentityMixin.get_from_email] builds the ``From:``
    value."""

    email_from = models.EmailField(_("sender address"), blank=True)
    email_sender_name = models.CharField(
        _("sender name"), max_length=255, blank=True, validators=[no_newlines]
    )
    email_reply_to = models.EmailField(_("reply-to address"), blank=True)

    template_methods: ClassVar[tuple[str, ...]] = ("get_from_email", "get_reply_to")

    class Meta:
        abstract = True

    def get_from_email(self) -> str:
        """``"Name" <address>`` (quoted and encoded as RFC 5322 requires), the bare address
        without a name, or ``settings.DEFAULT_FROM_EMAIL`` when no address is set."""
        if not self.email_from:
            return str(settings.DEFAULT_FROM_EMAIL)
        return format_address(self.email_sender_name, self.email_from)

    def get_reply_to(self) -> list[str]:
        """The ``reply_to`` list for ``EmailMessage``: empty when no address is set."""
        return [self.email_reply_to] if self.email_reply_to else []
