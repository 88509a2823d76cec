"""Template context processors: lazy, so a template that never touches them costs nothing.

Add them to ``TEMPLATES[...]["OPTIONS"]["context_processors"]``:

- ``keel.site.context_processors.site_settings``: every singleton under its ``context_name``
  (``site_settings`` for the ``AbstractSiteSettings`` model);
- ``keel.site.context_processors.static_content``: the content map of the active language
  under ``static_content`` (``{{ static_content.footer_text }}``).

Secret fields are not reachable from templates: the objects handed to templates refuse them,
refuse names starting with ``_``, and refuse the model API (``save``, ``refresh_from_db``...).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.db import models
from django.http import HttpRequest

from keel.site.codec import published_fields
from keel.site.registry import context_models

__all__ = ["PublicSingleton", "StaticContentMap", "site_settings", "static_content"]

_MODEL_API = frozenset(dir(models.Model))


class PublicSingleton:
    """What templates see of a singleton: loaded on first use, secrets refused."""

    __slots__ = ("_allowed", "_instance", "_model")

    def __init__(self, model: type[models.Model]) -> None:
        self._model = model
        self._instance: models.Model | None = None
        self._allowed: frozenset[str] | None = None

    def _load(self) -> models.Model:
        if self._instance is None:
            self._instance = self._model.load()  # type: ignore[attr-defined]
        return self._instance

    def _is_allowed(self, name: str) -> bool:
        if self._allowed is None:
            fields = published_fields(self._model)
            self._allowed = frozenset(
                [f.name for f in fields] + [f.attname for f in fields] + ["pk"]
            )
        if name in self._allowed:
            return True
        if name.startswith("_") or name in _MODEL_API:
            return False
        # Methods and properties the project defined, unless they shadow a secret field.
        secret = {f.name for f in self._model._meta.concrete_fields} - self._allowed
        return name not in secret and hasattr(self._model, name)

    def __getattr__(self, name: str) -> Any:
        if not self._is_allowed(name):
            raise AttributeError(name)
        return getattr(self._load(), name)

    def __str__(self) -> str:
        return str(self._load())

    def __repr__(self) -> str:
        return f"<PublicSingleton {self._model._meta.label}>"


class StaticContentMap(Mapping[str, str]):
    """The content map of the active language, read on first use."""

    __slots__ = ("_map", "_model")

    def __init__(self, model: type[models.Model]) -> None:
        self._model = model
        self._map: Mapping[str, str] | None = None

    def _load(self) -> Mapping[str, str]:
        if self._map is None:
            self._map = self._model.get_content_map()  # type: ignore[attr-defined]
        return self._map

    def __getitem__(self, key: str) -> str:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return f"<StaticContentMap {self._model._meta.label}>"


def site_settings(request: HttpRequest) -> dict[str, Any]:
    """``{context_name: PublicSingleton}`` for every singleton model."""
    from keel.site.models import SiteSettingsSyncMixin

    return {name: PublicSingleton(m) for name, m in context_models(SiteSettingsSyncMixin).items()}


def static_content(request: HttpRequest) -> dict[str, Any]:
    """``{context_name: StaticContentMap}`` for every static content model."""
    from keel.site.models import AbstractStaticContent

    return {name: StaticContentMap(m) for name, m in context_models(AbstractStaticContent).items()}
