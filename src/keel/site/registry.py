"""Finding the project's concrete cached models (no setting names them).

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import functools
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model

from keel import compat


@functools.lru_cache(maxsize=4)
def _cached_models(marker: tuple[int, int]) -> tuple[type[Model], ...]:
    from keel.site.models import CachedModelMixin

    return tuple(
        m
        for m in apps.get_models()
        if issubclass(m, CachedModelMixin) and not m._meta.proxy and not compat.is_swapped(m)
    )


def cached_models() -> tuple[type[Model], ...]:
    """Every installed concrete model built on keel's cached models."""
    # ``apps.get_models()`` is cached by Django and rebuilt (a new list) when a model is
    # registered: the list's identity tells when to look again.
    models = apps.get_models()
    return _cached_models((id(models), len(models)))


def context_models(base: type[Model]) -> dict[str, type[Model]]:
    """``{context_name: model}`` of the installed subclasses of ``base`` that have one.

    Two models claiming one name is a configuration error, reported on first use.
    """
    found: dict[str, type[Model]] = {}
    for model in cached_models():
        name: Any = getattr(model, "context_name", None)
        if not issubclass(model, base) or not name:
            continue
        if name in found:
            raise ImproperlyConfigured(
                f"{found[name]._meta.label} and {model._meta.label} both use the template "
                f"name {name!r}: set context_name on one of them."
            )
        found[name] = model
    return found


def get_site_settings_model() -> type[Model]:
    """The installed concrete subclass of ``AbstractSiteSettings`` (there must be one)."""
    from keel.site.models import AbstractSiteSettings

    models = [m for m in cached_models() if issubclass(m, AbstractSiteSettings)]
    if len(models) != 1:
        found = ", ".join(m._meta.label for m in models) or "none"
        raise ImproperlyConfigured(
            "keel needs exactly one concrete model subclassing AbstractSiteSettings, found "
            f"{found}. With several, subclass the middleware and set its settings_model."
        )
    return models[0]
