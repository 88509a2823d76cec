"""The cached objects of keel's project-state models: a singleton, a content map, a page.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from types import MappingProxyType
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import DEFAULT_DB_ALIAS, models
from django.db.models import Model, QuerySet
from django.db.models.functions import Lower
from django.utils import translation

from keel.compat import DeferredAttribute
from keel.site.codec import decode_instance, encode_instance, published_fields, secret_fields
from keel.site.documents import CachedInstance, CachedSource


def language_chain(language: str) -> list[str]:
    """Rows that apply to ``language``, least specific first: ``["", "fr", "fr-ca"]``
    (lower-cased: language codes compare without regard to case, ``fr-CA`` is ``fr-ca``)."""
    language = language.lower()
    chain = [""]
    base = language.split("-")[0]
    if base:
        chain.append(base)
    if language not in chain:
        chain.append(language)
    return chain


def rows_in(rows: QuerySet[Any], chain: list[str]) -> QuerySet[Any]:
    """The rows of ``rows`` whose language is in ``chain``, whatever its case (the database's
    collation may or may not ignore case), each annotated with ``language_code``: its language
    lower-cased. Ordered by language, so that of two rows differing only in case the same one
    wins on every database."""
    found: QuerySet[Any] = (
        rows.annotate(language_code=Lower("language"))
        .filter(language_code__in=chain)
        .order_by("language")
    )
    return found


def has_language_dependent_fields(model: type[Model]) -> bool:
    """Whether reading a published field may depend on the active language.

    Django reads a field through a ``DeferredAttribute`` (or a subclass: foreign keys, files);
    anything else on the class under a field's name (django-modeltranslation's descriptors,
    a project's own) may route by language, so it counts as language-dependent.
    """
    for field in published_fields(model):
        # The attname holds the stored value (a foreign key's name is the related object).
        attribute = inspect.getattr_static(model, field.attname, None)
        if attribute is not None and not isinstance(attribute, DeferredAttribute):
            return True
    return False


class SingletonSource(CachedSource[Model]):
    """The one row of a singleton model, as an instance with its secret fields deferred."""

    kind = "settings"
    rebuild_on_publish = True

    def __init__(self, model: type[Model]) -> None:
        super().__init__(model)
        declared = getattr(model, "cache_per_language", None)
        self.per_language = (
            has_language_dependent_fields(self.model) if declared is None else bool(declared)
        )
        if not self.per_language:
            self.default_lkey = (self.kind, DEFAULT_DB_ALIAS, "any", None)

    def _language(self, language: str) -> Any:
        # "any": the model declared that nothing in it depends on the language.
        return translation.override(language) if self.per_language else nullcontext()

    def _queryset(self, alias: str) -> models.QuerySet[Model]:
        qs = self.model._base_manager.db_manager(alias).all()
        secrets = [f.name for f in secret_fields(self.model)]
        return qs.defer(*secrets) if secrets else qs

    def build(self, alias: str, language: str, part: str | None) -> tuple[Any, Any]:
        pk = self.model.singleton_pk  # type: ignore[attr-defined]
        with self._language(language):
            try:
                instance = self._queryset(alias).get(pk=pk)
            except ObjectDoesNotExist:
                self.model._default_manager.db_manager(alias).get_or_create(pk=pk)
                instance = self._queryset(alias).get(pk=pk)
            return encode_instance(instance), CachedInstance(instance)

    def build_for_publish(self, alias: str, language: str) -> tuple[Any, Any] | None:
        pk = self.model.singleton_pk  # type: ignore[attr-defined]
        with self._language(language):
            instance = self._queryset(alias).filter(pk=pk).first()
            if instance is None:
                return None
            return encode_instance(instance), CachedInstance(instance)

    def from_payload(self, alias: str, payload: Any) -> Any:
        return CachedInstance(decode_instance(self.model, alias, payload))

    def get_value(self, cached: Any) -> Model:
        return cached.get()  # type: ignore[no-any-return]

    def value_getter(self, cached: Any) -> Callable[[], Model]:
        return cached.get  # type: ignore[no-any-return]


class ContentMapSource(CachedSource[Mapping[str, str]]):
    """``{key: content}`` for one language: language rows override the language-neutral ones."""

    kind = "content"

    def build(self, alias: str, language: str, part: str | None) -> tuple[Any, Any]:
        chain = language_chain(language)
        rank = {code: index for index, code in enumerate(chain)}
        rows = rows_in(self.model._base_manager.db_manager(alias).all(), chain).values_list(
            "key", "language_code", "content"
        )
        best: dict[str, tuple[int, str]] = {}
        for key, row_language, content in rows:
            order = rank[row_language]
            if key not in best or order > best[key][0]:
                best[key] = (order, content)
        payload = {key: content for key, (_, content) in sorted(best.items())}
        return payload, MappingProxyType(payload)

    def from_payload(self, alias: str, payload: Any) -> Any:
        if not isinstance(payload, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in payload.items()
        ):
            raise ValueError("not a content map")
        return MappingProxyType(payload)


class PageSource(CachedSource[Model | None]):
    """The SEO row of one page for one language (the most specific one), or ``None``."""

    kind = "page"

    def build(self, alias: str, language: str, part: str | None) -> tuple[Any, Any]:
        chain = language_chain(language)
        rows = list(
            rows_in(self.model._base_manager.db_manager(alias).filter(page_key=part), chain)
        )
        if not rows:
            return None, None
        instance = max(rows, key=lambda row: chain.index(row.language_code))
        return encode_instance(instance), CachedInstance(instance)

    def from_payload(self, alias: str, payload: Any) -> Any:
        if payload is None:
            return None
        return CachedInstance(decode_instance(self.model, alias, payload))

    def get_value(self, cached: Any) -> Model | None:
        return None if cached is None else cached.get()
