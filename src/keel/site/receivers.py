"""Signal receivers that keep caches right whatever writes the rows.

Connected by ``keel.apps.KeelConfig.ready()`` (which does no I/O):

- ``post_migrate``: create the row of every singleton model the migrated database holds;
- ``post_save`` with ``raw=True`` (``loaddata``) and ``post_delete`` (instances, querysets,
  cascades) of cached models: publish on commit;
- ``keel.signals.fixture_imported`` (bulk fixture imports that bypass ``save()``):
  publish;
- ``pre_delete`` of singletons: refuse, so a cascade from a deleted related row can never
  remove the singleton's row;
- ``post_migrate``: publish every cached model of the migrated database, so data migrations
  (historical models, ``RunSQL``) reach readers.

Code that writes cached models behind the ORM's back (set-based SQL, a fixture engine) calls
[`refresh_readers`][keel.site.receivers.refresh_readers] after the write.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.core.signals import setting_changed
from django.db import connections, router
from django.db.models import Model
from django.db.models.signals import post_delete, post_migrate, post_save, pre_delete

from keel.signals import fixture_imported

__all__ = [
    "refresh_readers",
]


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


def refresh_readers(model: type[Model], *, using: str | None = None) -> bool:
    """Refresh every reader of ``model`` after a write that bypassed ``save()`` and keel's
    querysets (set-based SQL, a bulk fixture import). Returns whether ``model`` is cached.

    Call it inside the writing transaction (after the write): the model's version is
    incremented in that transaction and readers are refreshed when it commits; a rollback
    undoes both. Called after the commit, it refreshes readers at once. Does nothing for a
    model keel does not cache. Store errors are logged, never raised.
    """
    if not _is_cached(model):
        return False
    model.publish(using=using)  # type: ignore[attr-defined]
    return True


def publish_after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """Publish the cached models of ``sender`` in ``using``: a data migration may have
    written them through historical models, which have no keel behaviour."""
    tables = None
    for model in sender.get_models():
        if not _is_cached(model) or not router.allow_migrate_model(using, model):
            continue
        if tables is None:
            tables = set(connections[using].introspection.table_names())
        if model._meta.db_table in tables:
            model.publish(using=using)  # type: ignore[attr-defined]


def refuse_singleton_delete(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    """Refuse deleting a singleton's row, also by cascade (the whole delete rolls back)."""
    from keel.site.models import SingletonDeletionError

    raise SingletonDeletionError(
        f"{sender._meta.label} is a singleton: its row cannot be deleted, also not by a "
        "cascade. Give the foreign keys of the singleton on_delete=SET_NULL or PROTECT."
    )


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
    post_migrate.connect(publish_after_migrate, dispatch_uid="keel.site.publish_after_migrate")
    from keel.site.models import SiteSettingsSyncMixin

    for model in global_apps.get_models():
        if _is_cached(model):
            uid = f"keel.site:{model._meta.label_lower}"
            post_save.connect(publish_after_raw_save, sender=model, dispatch_uid=uid)
            post_delete.connect(publish_after_delete, sender=model, dispatch_uid=uid)
            if issubclass(model, SiteSettingsSyncMixin):
                pre_delete.connect(refuse_singleton_delete, sender=model, dispatch_uid=uid)
