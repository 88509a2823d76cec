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


class Opaque:
    """A wrapper whose underscored attributes no template reaches.

    Template engines other than Django's (Jinja2) read any attribute, underscored ones
    included: none of a wrapper's own state (the instance, its loader, the model) or Python's
    machinery (``__init__.__globals__``) is reachable by name. keel reads the state through
    ``_state``.
    """

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        if name[:1] == "_":
            raise AttributeError(name)
        return object.__getattribute__(self, name)


def _state(wrapper: Opaque, name: str) -> Any:
    """An underscored attribute of ``wrapper`` (refused to templates)."""
    return object.__getattribute__(wrapper, name)


class PublicFile(Opaque):
    """What templates see of a file field: its ``name`` and ``url`` (empty when unset)."""

    __slots__ = ("_file",)

    def __init__(self, file: FieldFile) -> None:
        self._file = file

    @property
    def name(self) -> str:
        file: FieldFile = _state(self, "_file")
        return file.name or ""

    @property
    def url(self) -> str:
        file: FieldFile = _state(self, "_file")
        return file.url if file else ""

    def __bool__(self) -> bool:
        return bool(_state(self, "_file"))

    def __str__(self) -> str:
        return self.name


class PublicView(Opaque):
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
        instance: models.Model | None = _state(self, "_instance")
        if instance is None:
            instance = _state(self, "_loader")()
            object.__setattr__(self, "_instance", instance)
        if instance is None:
            raise AttributeError("nothing to show")
        return instance

    def __getattr__(self, name: str) -> Any:
        values, relations, methods = template_rules(_state(self, "_model"))
        if name in values:
            value = getattr(_instance(self), name)
            return PublicFile(value) if isinstance(value, FieldFile) else value
        if name in relations:
            return public_view(getattr(_instance(self), name))
        if name in methods:
            return getattr(_instance(self), name)
        raise AttributeError(name)

    def __str__(self) -> str:
        return str(_instance(self))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {_state(self, '_model')._meta.label}>"


def _instance(view: PublicView) -> models.Model:
    return _state(view, "_load")()  # type: ignore[no-any-return]


def public_view(instance: models.Model | None) -> PublicView | None:
    """``instance`` as templates may see it (``None`` stays ``None``)."""
    if instance is None:
        return None
    return PublicView(type(instance), lambda: instance)


class PublicSingleton(PublicView):
    """What templates see of a singleton: loaded on first use, with
    [`PublicView`][keel.site.context_processors.PublicView]'s rules."""

    __slots__ = ()

    def __init__(self, model: type[models.Model]) -> None:
        super().__init__(model, model.load)  # type: ignore[attr-defined]


class StaticContentMap(Opaque, Mapping[str, str]):
    """The content map of the active language, read on first use."""

    __slots__ = ("_map", "_model")

    def __init__(self, model: type[models.Model]) -> None:
        self._model = model
        self._map: Mapping[str, str] | None = None

    def _load(self) -> Mapping[str, str]:
        found: Mapping[str, str] | None = _state(self, "_map")
        if found is None:
            found = _state(self, "_model").get_content_map()
            object.__setattr__(self, "_map", found)
        return found

    def __getitem__(self, key: str) -> str:
        return _content(self)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_content(self))

    def __len__(self) -> int:
        return len(_content(self))

    def __repr__(self) -> str:
        return f"<StaticContentMap {_state(self, '_model')._meta.label}>"


def _content(wrapper: StaticContentMap) -> Mapping[str, str]:
    return _state(wrapper, "_load")()  # type: ignore[no-any-return]


def site_settings(request: HttpRequest) -> dict[str, Any]:
    """``{context_name: PublicSingleton}`` for every singleton model."""
    from keel.site.models import SiteSettingsSyncMixin

    return {name: PublicSingleton(m) for name, m in context_models(SiteSettingsSyncMixin).items()}


def static_content(request: HttpRequest) -> dict[str, Any]:
    """``{context_name: StaticContentMap}`` for every static content model."""
    from keel.site.models import AbstractStaticContent

    return {name: StaticContentMap(m) for name, m in context_models(AbstractStaticContent).items()}
