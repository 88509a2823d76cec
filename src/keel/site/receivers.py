"""Signal receivers that keep caches right whatever writes the rows.

Connected by ``keel.apps.KeelConfig.ready()`` (which does no I/O):

- ``post_migrate``: create the row of every singleton model the migrated database holds;
- ``post_save`` with ``raw=True`` (``loaddata``) and ``post_delete`` (instances, querysets,
  cascades) of cached models: publish on commit;
- :data:`keel.signals.fixture_imported` (bulk fixture imports that bypass ``save()``):
  publish.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.core.signals import setting_changed
from django.db import connections, router
from django.db.models import Model
from django.db.models.signals import post_delete, post_migrate, post_save

from keel.signals import fixture_imported

__all__ = ["connect_receivers"]


def _is_cached(model: Any) -> bool:
    from keel.site.models import CachedModelMixin

    return isinstance(model, type) and issubclass(model, CachedModelMixin)


def create_singletons(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """Create the missing singleton rows of ``sender``'s models in database ``using``."""
    from keel.site.models import SiteSettingsSyncMixin

    models = [
        m
        for m in sender.get_models()
        if issubclass(m, SiteSettingsSyncMixin) and router.allow_migrate_model(using, m)
    ]
    if not models:
        return
    tables = set(connections[using].introspection.table_names())
    for model in models:
        if model._meta.db_table in tables:
            model._default_manager.db_manager(using).get_or_create(pk=model.singleton_pk)


def publish_after_raw_save(
    sender: type[Model], raw: bool = False, using: str | None = None, **kwargs: Any
) -> None:
    if raw:
        sender.publish(using=using)  # type: ignore[attr-defined]


def publish_after_delete(sender: type[Model], using: str | None = None, **kwargs: Any) -> None:
    sender.publish(using=using)  # type: ignore[attr-defined]


def publish_after_fixture_import(sender: Any, using: str | None = None, **kwargs: Any) -> None:
    if _is_cached(sender):
        sender.publish(using=using)


def reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """Copies read from one store mean nothing for another: forget them when ``KEEL``
    changes."""
    if setting == "KEEL":
        from keel.site.cache import reset_process_state

        reset_process_state()


def connect_receivers() -> None:
    """Connect the receivers for every installed cached model (no database access)."""
    setting_changed.connect(reset_on_setting_changed, dispatch_uid="keel.site.cache")
    post_migrate.connect(create_singletons, dispatch_uid="keel.site.create_singletons")
    fixture_imported.connect(
        publish_after_fixture_import, dispatch_uid="keel.site.publish_after_fixture_import"
    )
    for model in global_apps.get_models():
        if _is_cached(model):
            uid = f"keel.site:{model._meta.label_lower}"
            post_save.connect(publish_after_raw_save, sender=model, dispatch_uid=uid)
            post_delete.connect(publish_after_delete, sender=model, dispatch_uid=uid)
