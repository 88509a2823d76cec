"""Template context processors: lazy, so a template that never touches them costs nothing.

Add them to ``TEMPLATES[...]["OPTIONS"]["context_processors"]``:

- ``keel.site.context_processors.site_settings``: every singleton under its ``context_name``
  (``site_settings`` for the ``AbstractSiteSettings`` model);
- ``keel.site.context_processors.static_content``: the content map of the active language
  under ``static_content`` (``{{ static_content.footer_text }}``).

Templates reach only the published, non-secret fields of a cached object, and the methods and
properties its model lists in ``template_methods``: never keel's API (``load``, ``publish``,
``clear_cache``...), Django's model API, names starting with ``_``, nor reverse relations. A
foreign key leads to a view of the related row with the same rules, a file field to its
``name`` and ``url`` only: nothing leads back to an unwrapped instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from django.db import models
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest

from keel.site.codec import published_fields
from keel.site.registry import context_models

__all__ = [
    "PublicFile",
    "PublicSingleton",
    "PublicView",
    "StaticContentMap",
    "site_settings",
    "static_content",
]


def _keel_api() -> frozenset[str]:
    from keel.site import models as site_models

    names = set(dir(models.Model))
    for cls in (
        site_models.CachedModelMixin,
        site_models.SiteSettingsSyncMixin,
        site_models.AbstractSiteSettings,
        site_models.AbstractStaticContent,
        site_models.AbstractStaticPageSeo,
    ):
        names.update(n for n, v in vars(cls).items() if callable(v) or isinstance(v, classmethod))
    names.update(("objects", "template_methods", "context_name", "singleton_pk"))
    return frozenset(names)


_api: frozenset[str] | None = None
_rules: dict[type[models.Model], tuple[frozenset[str], frozenset[str], frozenset[str]]] = {}


def template_rules(
    model: type[models.Model],
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """``(values, relations, methods)``: the names templates may read on ``model``."""
    global _api
    try:
        return _rules[model]
    except KeyError:
        pass
    if _api is None:
        _api = _keel_api()
    fields = published_fields(model)
    relations = frozenset(f.name for f in fields if f.is_relation)
    values = frozenset(
        [f.name for f in fields if not f.is_relation] + [f.attname for f in fields] + ["pk"]
    )
    secrets = {f.name for f in model._meta.concrete_fields} - values - relations
    listed: set[str] = set()
    for cls in model.__mro__:
        listed.update(vars(cls).get("template_methods", ()))
    methods = frozenset(n for n in listed if n not in _api and n not in secrets and n[:1] != "_")
    _rules[model] = (values, relations, methods)
    return _rules[model]


class PublicFile:
    """What templates see of a file field: its ``name`` and ``url`` (empty when unset)."""

    __slots__ = ("_file",)

    def __init__(self, file: FieldFile) -> None:
        self._file = file

    @property
    def name(self) -> str:
        return self._file.name or ""

    @property
    def url(self) -> str:
        return self._file.url if self._file else ""

    def __bool__(self) -> bool:
        return bool(self._file)

    def __str__(self) -> str:
        return self.name


class PublicView:
    """What templates see of a model instance: published fields, listed methods, wrapped
    relations. ``loader`` is called on first use (a lazy context costs nothing unused)."""

    __slots__ = ("_instance", "_loader", "_model")

    def __init__(
        self, model: type[models.Model], loader: Callable[[], models.Model | None]
    ) -> None:
        self._model = model
        self._loader = loader
        self._instance: models.Model | None = None

    def _load(self) -> models.Model:
        if self._instance is None:
            self._instance = self._loader()
        if self._instance is None:
            raise AttributeError("nothing to show")
        return self._instance

    def __getattr__(self, name: str) -> Any:
        values, relations, methods = template_rules(self._model)
        if name in values:
            value = getattr(self._load(), name)
            return PublicFile(value) if isinstance(value, FieldFile) else value
        if name in relations:
            return public_view(getattr(self._load(), name))
        if name in methods:
            return getattr(self._load(), name)
        raise AttributeError(name)

    def __str__(self) -> str:
        return str(self._load())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._model._meta.label}>"


def public_view(instance: models.Model | None) -> PublicView | None:
    """``instance`` as templates may see it (``None`` stays ``None``)."""
    if instance is None:
        return None
    return PublicView(type(instance), lambda: instance)


class PublicSingleton(PublicView):
    """What templates see of a singleton: loaded on first use, with :class:`PublicView`'s
    rules."""

    __slots__ = ()

    def __init__(self, model: type[models.Model]) -> None:
        super().__init__(model, model.load)  # type: ignore[attr-defined]


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
