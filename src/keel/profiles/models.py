"""The abstract user profile (``user.profile``): names, a normalised phone, an avatar."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import (
    FileExtensionValidator,
    RegexValidator,
)
from django.db import models
from django.utils.translation import gettext_lazy as _

from keel.validators import IMAGE_EXTENSIONS

__all__ = [
    "AbstractUserProfile",
]

# -- user profile ------------------------------------------------------------------------------

_phone_separators = re.compile(r"[\s().\-/]")


def normalize_phone(value: str) -> str:
    """``"+49 (30) 123-45"`` -> ``"+493012345"``; separators go, a leading ``+`` stays."""
    return _phone_separators.sub("", value.strip())


class AbstractUserProfile(models.Model):
    """Per-user details beside ``AUTH_USER_MODEL`` (``user.profile``). Not cached."""

    class Source(models.TextChoices):
        BOOKING = "booking", _("booking")
        FORM = "form", _("form")
        MANUAL = "manual", _("manual")
        SOCIAL = "social", _("social login")

    #: Order of the name parts in
    #: [`get_full_name`][keel.profiles.models.AbstractUserProfile.get_full_name].
    full_name_order: ClassVar[tuple[str, ...]] = ("first_name", "patronymic", "last_name")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="profile",
        verbose_name=_("user"),
    )
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    patronymic = models.CharField(_("patronymic"), max_length=100, blank=True)
    phone = models.CharField(
        _("phone"),
        max_length=20,
        blank=True,
        validators=[RegexValidator(r"^(\+?[0-9]{6,15})?$", _("6 to 15 digits, optional +."))],
    )
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    avatar = models.FileField(
        _("avatar"),
        upload_to="avatars/",
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS)],
    )
    source = models.CharField(
        _("source"), max_length=20, choices=Source.choices, default=Source.MANUAL
    )
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        verbose_name = _("user profile")
        verbose_name_plural = _("user profiles")

    def __str__(self) -> str:
        return self.get_full_name() or str(self.user or "") or f"#{self.pk}"

    def save(self, **kwargs: Any) -> None:
        self.phone = normalize_phone(self.phone)
        super().save(**kwargs)

    def clean(self) -> None:
        super().clean()
        self.phone = normalize_phone(self.phone)

    def get_full_name(self) -> str:
        """The name parts that are set, in ``full_name_order``."""
        return " ".join(p for p in (getattr(self, n) for n in self.full_name_order) if p)

    def get_initials(self) -> str:
        """Initials of the first and last names (``"?"`` when neither is set)."""
        initials = "".join(n[0].upper() for n in (self.first_name, self.last_name) if n)
        return initials or "?"
