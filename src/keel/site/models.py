"""Abstract models of a project's state: site settings, static content, page SEO, profiles.

A project composes its concrete models from these (they are all abstract)::

    class SiteSettings(SiteContactSettingsMixin, SiteEmailIdentityMixin, AbstractSiteSettings):
        pass

Reads of cached models go through :mod:`keel.site.cache` (request memo, process copy, one
shared-store round trip, database); every way of writing them (``save()``, ``delete()``,
``QuerySet.update()``/``delete()``/``bulk_create()``/``bulk_update()``, ``loaddata``, keel's
fixture commands) publishes on commit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    FileExtensionValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models, router
from django.db.models.signals import class_prepared
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from keel.exceptions import KeelError
from keel.site.cache import (
    CachedSource,
    aread,
    clear_local_copies,
    read,
    schedule_publish,
)
from keel.site.codec import presentation_dict
from keel.site.email import format_address
from keel.site.encryption import EncryptedCharField
from keel.site.sources import ContentMapSource, PageSource, SingletonSource

__all__ = [
    "AbstractSiteSettings",
    "AbstractStaticContent",
    "AbstractStaticPageSeo",
    "AbstractUserProfile",
    "CachedModelMixin",
    "CrmIntegrationMixin",
    "ExtraConfigMixin",
    "GoogleIntegrationMixin",
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
]

IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "gif", "webp", "svg", "avif"]

no_newlines = RegexValidator(
    r"[\r\n]", inverse_match=True, message=_("Line breaks are not allowed here.")
)


class SingletonDeletionError(KeelError):
    """A singleton row was asked to be deleted; it is edited, never deleted."""


_sources: dict[type[models.Model], tuple[CachedSource[Any], ...]] = {}


# -- cache plumbing shared by every cached model --------------------------------------------


class PublishingQuerySet(models.QuerySet[Any]):
    """A queryset whose bulk writes publish the model's cache on commit, like ``save()``.

    ``update()``, ``bulk_create()`` and ``bulk_update()`` publish here; deletes (of instances,
    of querysets and by cascade) publish through keel's ``post_delete`` receiver.
    """

    def _published(self) -> None:
        self.model.publish(using=self.db)

    def update(self, **kwargs: Any) -> int:
        rows = super().update(**kwargs)
        self._published()
        return rows

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        created = super().bulk_create(objs, *args, **kwargs)
        self._published()
        return created

    def bulk_update(self, objs: Any, fields: Any, *args: Any, **kwargs: Any) -> int:
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        self._published()
        return rows


class SingletonQuerySet(PublishingQuerySet):
    """A singleton's queryset: ``update()`` publishes, ``delete()`` is refused."""

    def delete(self) -> tuple[int, dict[str, int]]:
        raise SingletonDeletionError(
            f"{self.model._meta.label} is a singleton: edit its row, do not delete it."
        )


def _publishing_base_manager(sender: type[models.Model], **kwargs: Any) -> None:
    """Make ``_base_manager`` of a concrete cached model its first publishing manager.

    Django's default base manager is a plain ``Manager``: ``Model._base_manager.update()``
    and ``bulk_update()`` would write without publishing. ``Meta.base_manager_name`` set by
    the project is kept.
    """
    opts = sender._meta
    if opts.abstract or opts.base_manager_name or not issubclass(sender, CachedModelMixin):
        return
    for manager in opts.managers:
        if isinstance(manager.get_queryset(), PublishingQuerySet):
            opts.base_manager_name = manager.name
            return


class_prepared.connect(_publishing_base_manager, dispatch_uid="keel.site.base_manager")


class CachedModelMixin(models.Model):
    """What every cached model has: ``publish()``, ``clear_cache()`` and ``to_dict()``."""

    #: Name under which keel's context processors expose the model's cached object.
    context_name: ClassVar[str | None] = None
    #: Methods and properties templates may use, besides the published fields. Collected
    #: from every class of the model's MRO, so each field group adds its own.
    template_methods: ClassVar[tuple[str, ...]] = ()

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        """Save, then publish once per transaction, on commit."""
        super().save(**kwargs)
        type(self).publish(using=kwargs.get("using") or self._state.db)

    @classmethod
    def cache_sources(cls) -> tuple[CachedSource[Any], ...]:
        """The cached objects built from this model (one source per kind)."""
        raise NotImplementedError

    @classmethod
    def _source(cls) -> CachedSource[Any]:
        concrete = cls._meta.concrete_model or cls
        try:
            return _sources[concrete][0]
        except KeyError:
            _sources[concrete] = concrete.cache_sources()  # type: ignore[attr-defined]
            return _sources[concrete][0]

    @classmethod
    def publish(cls, *, using: str | None = None) -> None:
        """Publish the database state on commit of ``using``'s transaction (at once outside).

        For a write that bypassed the ORM (raw SQL). Store errors are logged, never raised.
        """
        cls._source()
        alias = using or router.db_for_write(cls)
        schedule_publish(_sources[cls._meta.concrete_model or cls], alias)

    @classmethod
    def clear_cache(cls, *, using: str | None = None) -> None:
        """Make every cached copy of this model stale, in every process: now, or when the
        current transaction commits.

        The next read rebuilds from the database. Store errors are logged, never raised.
        """
        cls._source()
        concrete = cls._meta.concrete_model or cls
        invalidating = tuple(_Invalidating(s) for s in _sources[concrete])
        schedule_publish(invalidating, using or router.db_for_write(cls))
        clear_local_copies(cls)

    def to_dict(self) -> dict[str, Any]:
        """The published fields as JSON-safe values: dates and decimals as strings, files as
        URLs (``None`` when empty), foreign keys as ids. Secret fields are never included."""
        return presentation_dict(self)


class _Invalidating(CachedSource[Any]):
    """A source that only increments the generation (no rebuild)."""

    rebuild_on_publish = False

    def __init__(self, source: CachedSource[Any]) -> None:
        super().__init__(source.model)
        self.kind = source.kind


# -- singletons -----------------------------------------------------------------------------


class SiteSettingsSyncMixin(CachedModelMixin):
    """A singleton: one row with a fixed pk, read through keel's cache.

    ``load()`` returns the row (creating it when absent) as a model instance whose secret
    fields are deferred (read from the database on access, never cached). ``save()`` always
    targets the singleton pk and publishes once per transaction, on commit. ``delete()`` is
    refused with :class:`SingletonDeletionError`.
    """

    #: The primary key of the one row.
    singleton_pk: ClassVar[int] = 1
    #: Cache one document per language. ``None`` (default): when a field's value depends on
    #: the active language, i.e. its attribute is not Django's own descriptor (what
    #: django-modeltranslation installs); one document otherwise, and reads then skip looking
    #: up the active language.
    cache_per_language: ClassVar[bool | None] = None

    objects = SingletonQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        self.pk = self.singleton_pk
        super().save(**kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise SingletonDeletionError(
            f"{self._meta.label} is a singleton: edit its row, do not delete it."
        )

    @classmethod
    def cache_sources(cls) -> tuple[CachedSource[Any], ...]:
        return (SingletonSource(cls),)

    @classmethod
    def load(cls, *, using: str | None = None) -> Self:
        """The singleton, from the nearest fresh layer (see :mod:`keel.site.cache`)."""
        return read(cls._source(), using=using)  # type: ignore[no-any-return]

    @classmethod
    async def aload(cls, *, using: str | None = None) -> Self:
        """``load()`` for async code: the asyncio Redis client, the same layers."""
        return await aread(cls._source(), using=using)


class AbstractSiteSettings(SiteSettingsSyncMixin):
    """The project's site settings singleton; compose it with the ``Site*Mixin`` field groups.

    Exposed to templates as ``site_settings`` by
    :func:`keel.site.context_processors.site_settings`.
    """

    context_name: ClassVar[str | None] = "site_settings"

    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        verbose_name = _("site settings")
        verbose_name_plural = _("site settings")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A model that declares no Meta gets the one of the first base in its MRO: field
        # groups listed before AbstractSiteSettings would hide the verbose names above.
        # (Django reads a declared Meta before this runs, so a declared one always wins.)
        inherited = getattr(cls, "Meta", None)
        if inherited is not None and not issubclass(inherited, AbstractSiteSettings.Meta):
            cls.Meta = AbstractSiteSettings.Meta  # type: ignore[misc]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

    def save(self, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "updated_at" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "updated_at"]
        super().save(**kwargs)


# -- field groups ---------------------------------------------------------------------------


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


class SiteGeoSettingsMixin(models.Model):
    """Map link and coordinates (decimal degrees, validated ranges, both or neither)."""

    google_maps_link = models.URLField(_("map link"), max_length=500, blank=True)
    latitude = models.DecimalField(
        _("latitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(-90)), MaxValueValidator(Decimal(90))],
    )
    longitude = models.DecimalField(
        _("longitude"),
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(-180)), MaxValueValidator(Decimal(180))],
    )

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


_tracking_id = r"^[A-Za-z0-9_-]*$"


class SiteMarketingSettingsMixin(models.Model):
    """Public tracking ids (validated, so they are safe to put into a script tag)."""

    google_analytics_id = models.CharField(
        _("Google Analytics id"),
        max_length=50,
        blank=True,
        validators=[RegexValidator(r"^((G|UA|AW)-[A-Z0-9-]+)?$", _("Like G-XXXXXXX."))],
    )
    google_tag_manager_id = models.CharField(
        _("Google Tag Manager id"),
        max_length=50,
        blank=True,
        validators=[RegexValidator(r"^(GTM-[A-Z0-9]+)?$", _("Like GTM-XXXXXX."))],
    )
    facebook_pixel_id = models.CharField(
        _("Meta pixel id"),
        max_length=50,
        blank=True,
        validators=[RegexValidator(r"^[0-9]*$", _("Digits only."))],
    )
    tiktok_pixel_id = models.CharField(
        _("TikTok pixel id"),
        max_length=50,
        blank=True,
        validators=[RegexValidator(_tracking_id, _("Letters, digits, - and _ only."))],
    )

    class Meta:
        abstract = True


class SiteTechnicalSettingsMixin(models.Model):
    """Maintenance mode (enforced by :class:`keel.site.middleware.MaintenanceModeMiddleware`)
    and snippets added to every page (trusted input: only give the permission to edit these
    settings to people you would give a deploy to)."""

    maintenance_mode = models.BooleanField(_("maintenance mode"), default=False)
    maintenance_message = models.TextField(_("maintenance message"), blank=True)
    head_scripts = models.TextField(_("scripts in <head>"), blank=True)
    body_scripts = models.TextField(_("scripts at the end of <body>"), blank=True)

    class Meta:
        abstract = True


class SiteEmailIdentityMixin(models.Model):
    """Who the site's emails come from. :meth:`get_from_email` builds the ``From:`` value."""

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


# -- integration state (public ids in plain fields, secrets encrypted) -----------------------


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
    """Meta app credentials; the pixel id lives in :class:`SiteMarketingSettingsMixin`."""

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


# -- static content and page SEO -------------------------------------------------------------


class AbstractStaticContent(CachedModelMixin):
    """Text snippets by key, optionally per language (``""``: every language).

    Cached as one map per language; a row for ``"fr"`` overrides the language-neutral row for
    French, and serves ``"fr-ca"`` unless a ``"fr-ca"`` row exists. Any write makes every
    language's map stale on commit.
    """

    context_name: ClassVar[str | None] = "static_content"

    key = models.CharField(_("key"), max_length=255)
    language = models.CharField(
        _("language"),
        max_length=15,
        blank=True,
        default="",
        help_text=_("Empty: used for every language without its own row."),
    )
    content = models.TextField(_("content"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = PublishingQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["key", "language"]
        verbose_name = _("static content")
        verbose_name_plural = _("static content")
        constraints = [
            models.UniqueConstraint(
                fields=["key", "language"], name="%(app_label)s_%(class)s_key_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} [{self.language}]" if self.language else self.key

    @classmethod
    def cache_sources(cls) -> tuple[CachedSource[Any], ...]:
        return (ContentMapSource(cls),)

    @classmethod
    def get_content_map(
        cls, language: str | None = None, *, using: str | None = None
    ) -> Mapping[str, str]:
        """``{key: content}`` for ``language`` (default: the active one); read-only."""
        if language is None:
            return read(cls._source(), using=using)
        with translation.override(language):
            return read(cls._source(), using=using)

    @classmethod
    async def aget_content_map(
        cls, language: str | None = None, *, using: str | None = None
    ) -> Mapping[str, str]:
        """``get_content_map`` for async code."""
        if language is None:
            return await aread(cls._source(), using=using)
        with translation.override(language):
            return await aread(cls._source(), using=using)

    @classmethod
    def get_text(cls, key: str, default: str = "", *, language: str | None = None) -> str:
        """The content of ``key`` for ``language`` (default: the active one), or ``default``."""
        return cls.get_content_map(language).get(key, default)


class AbstractStaticPageSeo(CachedModelMixin):
    """Title, description and image of a page, by page key and optionally language.

    Cached per page and language (``for_page``); a missing page is cached too, so asking for
    it costs no query. Any write, including a page-key rename, makes every page stale on
    commit.
    """

    page_key = models.CharField(_("page key"), max_length=100)
    language = models.CharField(
        _("language"),
        max_length=15,
        blank=True,
        default="",
        help_text=_("Empty: used for every language without its own row."),
    )
    seo_title = models.CharField(_("title"), max_length=255, blank=True)
    seo_description = models.TextField(_("description"), blank=True)
    seo_image = models.FileField(
        _("image"),
        upload_to="seo/",
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS)],
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = PublishingQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["page_key", "language"]
        verbose_name = _("page SEO")
        verbose_name_plural = _("page SEO")
        constraints = [
            models.UniqueConstraint(
                fields=["page_key", "language"], name="%(app_label)s_%(class)s_page_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.page_key} [{self.language}]" if self.language else self.page_key

    @classmethod
    def cache_sources(cls) -> tuple[CachedSource[Any], ...]:
        return (PageSource(cls),)

    @classmethod
    def for_page(
        cls, page_key: str, language: str | None = None, *, using: str | None = None
    ) -> Self | None:
        """The SEO of ``page_key`` for ``language`` (default: the active one), or ``None``."""
        if language is None:
            return read(cls._source(), using=using, part=page_key)  # type: ignore[no-any-return]
        with translation.override(language):
            return read(cls._source(), using=using, part=page_key)  # type: ignore[no-any-return]

    @classmethod
    async def afor_page(
        cls, page_key: str, language: str | None = None, *, using: str | None = None
    ) -> Self | None:
        """``for_page`` for async code."""
        if language is None:
            return await aread(cls._source(), using=using, part=page_key)
        with translation.override(language):
            return await aread(cls._source(), using=using, part=page_key)


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

    #: Order of the name parts in :meth:`get_full_name`.
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
        """The name parts that are set, in :attr:`full_name_order`."""
        return " ".join(p for p in (getattr(self, n) for n in self.full_name_order) if p)

    def get_initials(self) -> str:
        """Initials of the first and last names (``"?"`` when neither is set)."""
        initials = "".join(n[0].upper() for n in (self.first_name, self.last_name) if n)
        return initials or "?"
