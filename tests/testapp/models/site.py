"""Concrete test models for keel.site."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import get_language

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


class Brand(models.Model):
    name = models.CharField(max_length=50)


class SiteSettings(
    SiteContactSettingsMixin,
    SiteGeoSettingsMixin,
    SiteSocialSettingsMixin,
    SiteMarketingSettingsMixin,
    SiteTechnicalSettingsMixin,
    SiteEmailIdentityMixin,
    GoogleIntegrationMixin,
    MetaIntegrationMixin,
    StripeIntegrationMixin,
    CrmIntegrationMixin,
    TwilioIntegrationMixin,
    SevenIntegrationMixin,
    ExtraConfigMixin,
    AbstractSiteSettings,
):
    site_name = models.CharField(max_length=100, default="keel")
    tagline = models.CharField(max_length=100, blank=True)
    tagline_fr = models.CharField(max_length=100, blank=True)
    logo = models.FileField(upload_to="logos/", blank=True)
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.SET_NULL)
    launched_on = models.DateField(null=True, blank=True)
    public_id = models.UUIDField(default=uuid.uuid4)

    template_methods = ("site_title",)

    def site_title(self) -> str:
        return f"{self.site_name}: {self.tagline}" if self.tagline else self.site_name


class TranslatedAttribute:
    """What django-modeltranslation puts on a translated field: the value of the active
    language's column (falling back to the default one); assignment goes to that column."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _column(self, instance: Any) -> str:
        language = (get_language() or "en").split("-")[0]
        column = f"{self.name}_{language}"
        return column if any(f.attname == column for f in instance._meta.fields) else self.name

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        return instance.__dict__.get(self._column(instance)) or instance.__dict__.get(self.name)

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self._column(instance)] = value


SiteSettings.tagline = TranslatedAttribute("tagline")  # type: ignore[assignment]


class BookingSettings(SiteSettingsSyncMixin):
    context_name = "booking_settings"

    slot_minutes = models.PositiveIntegerField(default=30)


class StaticContent(AbstractStaticContent):
    pass


class StaticPageSeo(AbstractStaticPageSeo):
    pass


class UserProfile(AbstractUserProfile):
    # The test app is synced before auth's migrations run: no database-level constraint.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="profile",
        db_constraint=False,
    )


class OwnedSettings(SiteSettingsSyncMixin):
    """A singleton with a cascading foreign key: deleting the owner must not delete it."""

    owner = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.CASCADE)
    motto = models.CharField(max_length=50, blank=True)


class PhoneNumber:
    """A third-party field's value: an object, not JSON (like phonenumbers' PhoneNumber)."""

    def __init__(self, digits: str) -> None:
        self.digits = "".join(c for c in digits if c.isdigit() or c == "+")

    def __str__(self) -> str:
        return self.digits

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhoneNumber) and other.digits == self.digits

    def __hash__(self) -> int:
        return hash(self.digits)


class PhoneNumberField(models.CharField):  # type: ignore[type-arg]
    """Stores text, hands out :class:`PhoneNumber` objects (as django-phonenumber-field)."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return self.to_python(value)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, PhoneNumber):
            return value
        return PhoneNumber(str(value))

    def get_prep_value(self, value: Any) -> Any:
        return None if value is None else str(value)


class TypedSettings(SiteSettingsSyncMixin):
    """A singleton whose field values are not JSON."""

    hotline = PhoneNumberField(max_length=32, null=True, blank=True)


class StoredFormSettings(SiteSettingsSyncMixin):
    """A singleton whose fields store values in another form than an instance may hold."""

    amount = models.DecimalField(max_digits=6, decimal_places=2, default=0)
    data = models.JSONField(default=dict, blank=True)
    label = models.CharField(max_length=200, blank=True)


class StoredFormChildSettings(StoredFormSettings):
    """A multi-table child singleton: a save writes its parent's row and its own."""

    extra = models.CharField(max_length=20, blank=True)
