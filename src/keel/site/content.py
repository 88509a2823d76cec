"""Static content and page SEO: rows by key and language on one shared base."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from django.core.validators import FileExtensionValidator
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from keel.site.base import CachedModelMixin, PublishingQuerySet
from keel.site.cache import CachedSource, aread, read
from keel.site.sources import ContentMapSource, PageSource
from keel.validators import IMAGE_EXTENSIONS

__all__ = [
    "AbstractStaticContent",
    "AbstractStaticPageSeo",
]


def _language_field() -> models.CharField[str, str]:
    return models.CharField(
        _("language"),
        max_length=15,
        blank=True,
        default="",
        help_text=_("Empty: used for every language without its own row."),
    )


def _by_language(field: str, name: str) -> tuple[list[str], list[models.BaseConstraint]]:
    """The ``ordering`` and ``constraints`` of rows by ``field`` and language: one row per key
    and language."""
    return [field, "language"], [
        models.UniqueConstraint(fields=[field, "language"], name=f"%(app_label)s_%(class)s_{name}")
    ]


class LanguageRowsModel(CachedModelMixin):
    """Rows by a key and a language (``""``: every language), cached per language: the base of
    static content and page SEO. Any write makes every language's cached objects stale on
    commit."""

    #: The field that, with ``language``, picks a row.
    key_field: ClassVar[str]
    #: The cached objects built from the rows.
    source_class: ClassVar[type[CachedSource[Any]]]
    language: str

    objects = PublishingQuerySet.as_manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        key = str(getattr(self, self.key_field))
        return f"{key} [{self.language}]" if self.language else key

    @classmethod
    def cache_sources(cls) -> tuple[CachedSource[Any], ...]:
        return (cls.source_class(cls),)

    @classmethod
    def read_in(cls, language: str | None, using: str | None, part: str | None = None) -> Any:
        """The cached object of ``part`` for ``language`` (default: the active one)."""
        if language is None:
            return read(cls._source(), using=using, part=part)
        with translation.override(language):
            return read(cls._source(), using=using, part=part)

    @classmethod
    async def aread_in(
        cls, language: str | None, using: str | None, part: str | None = None
    ) -> Any:
        """``read_in`` for async code."""
        if language is None:
            return await aread(cls._source(), using=using, part=part)
        with translation.override(language):
            return await aread(cls._source(), using=using, part=part)


class AbstractStaticContent(LanguageRowsModel):
    """Text snippets by key, optionally per language (``""``: every language).

    Cached as one map per language; a row for ``"fr"`` overrides the language-neutral row for
    French, and serves ``"fr-ca"`` unless a ``"fr-ca"`` row exists. Any write makes every
    language's map stale on commit.
    """

    context_name: ClassVar[str | None] = "static_content"
    key_field = "key"
    source_class = ContentMapSource

    key = models.CharField(_("key"), max_length=255)
    language = _language_field()
    content = models.TextField(_("content"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering, constraints = _by_language("key", "key_language")
        verbose_name = verbose_name_plural = _("static content")

    @classmethod
    def get_content_map(
        cls, language: str | None = None, *, using: str | None = None
    ) -> Mapping[str, str]:
        """``{key: content}`` for ``language`` (default: the active one); read-only."""
        found: Mapping[str, str] = cls.read_in(language, using)
        return found

    @classmethod
    async def aget_content_map(
        cls, language: str | None = None, *, using: str | None = None
    ) -> Mapping[str, str]:
        """``get_content_map`` for async code."""
        found: Mapping[str, str] = await cls.aread_in(language, using)
        return found

    @classmethod
    def get_text(cls, key: str, default: str = "", *, language: str | None = None) -> str:
        """The content of ``key`` for ``language`` (default: the active one), or ``default``."""
        return cls.get_content_map(language).get(key, default)


class AbstractStaticPageSeo(LanguageRowsModel):
    """Title, description and image of a page, by page key and optionally language.

    Cached per page and language (``for_page``); a missing page is cached too, so asking for
    it costs no query. Any write, including a page-key rename, makes every page stale on
    commit.
    """

    key_field = "page_key"
    source_class = PageSource

    page_key = models.CharField(_("page key"), max_length=100)
    language = _language_field()
    seo_title = models.CharField(_("title"), max_length=255, blank=True)
    seo_description = models.TextField(_("description"), blank=True)
    seo_image = models.FileField(
        _("image"),
        upload_to="seo/",
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS)],
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering, constraints = _by_language("page_key", "page_language")
        verbose_name = verbose_name_plural = _("page SEO")

    @classmethod
    def for_page(
        cls, page_key: str, language: str | None = None, *, using: str | None = None
    ) -> Self | None:
        """The SEO of ``page_key`` for ``language`` (default: the active one), or ``None``."""
        found: Self | None = cls.read_in(language, using, page_key)
        return found

    @classmethod
    async def afor_page(
        cls, page_key: str, language: str | None = None, *, using: str | None = None
    ) -> Self | None:
        """``for_page`` for async code."""
        found: Self | None = await cls.aread_in(language, using, page_key)
        return found
