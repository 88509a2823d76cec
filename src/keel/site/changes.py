"""What a save of a singleton changed, and the
[`site_settings_changed`][keel.signals.site_settings_changed] signal that reports it.

Old values are read from the database inside the save's own transaction, with
``select_for_update()`` where the database supports it, not taken from what the instance
loaded: an instance read from keel's cache, or loaded before someone else saved, would
report changes that are not the ones this save made. New values are the instance's, as the
field would store them (``to_python``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.utils.text import Truncator

from keel.signals import site_settings_changed
from keel.site.encryption import is_secret_field

__all__ = ["MASK", "saved_with_changes", "shown_value"]

logger = logging.getLogger(__name__)

MASK = "••••••••"
"""Shown instead of a secret's value in the admin history and in ``site_settings_changed``."""


def shown_value(field: models.Field[Any, Any], instance: models.Model) -> str:
    """A field's value as the history and the signal show it: secrets masked, long text cut
    to 80 characters."""
    if is_secret_field(field):
        return MASK if field.value_from_object(instance) else ""
    return Truncator(field.value_to_string(instance)).chars(80)


def _stored(field: models.Field[Any, Any], instance: models.Model) -> Any:
    value = field.value_from_object(instance)
    if isinstance(field, models.FileField):
        # An empty file is ``None`` in some instances and an empty ``FieldFile`` in others.
        return getattr(value, "name", value) if value else ""
    try:
        return field.to_python(value)
    except ValidationError:
        return value


def _written_fields(
    instance: models.Model, update_fields: Iterable[str] | None
) -> list[models.Field[Any, Any]]:
    """The fields the save writes and a person may have changed: not the primary key, not
    ``auto_now`` fields (they change on every save)."""
    fields = [
        f
        for f in instance._meta.concrete_fields
        if not f.primary_key and not getattr(f, "auto_now", False)
    ]
    if update_fields is not None:
        names = set(update_fields)
        return [f for f in fields if f.name in names or f.attname in names]
    deferred = instance.get_deferred_fields()
    return [f for f in fields if f.attname not in deferred]


def _changes(
    old: models.Model, instance: models.Model, update_fields: Iterable[str] | None
) -> dict[str, tuple[str, str]]:
    return {
        field.name: (shown_value(field, old), shown_value(field, instance))
        for field in _written_fields(instance, update_fields)
        if _stored(field, old) != _stored(field, instance)
    }


def saved_with_changes(
    instance: models.Model, save: Callable[..., None], kwargs: dict[str, Any]
) -> None:
    """Run ``save(**kwargs)`` for ``instance`` and send ``site_settings_changed`` when the
    outermost transaction commits, if the save changed any field.

    The row is read (and locked) before the save in the same transaction, so two concurrent
    saves each report what they changed. A save that creates the row compares with the
    fields' defaults. Under manual transaction management (``set_autocommit(False)``),
    Django has no commit hook: the save runs alone and nothing is sent. Describing the
    changes never fails the save: an error there is logged and nothing is sent.
    """
    model = type(instance)
    using = kwargs.get("using") or router.db_for_write(model, instance=instance)
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block and not connection.get_autocommit():
        save(**kwargs)
        return
    with transaction.atomic(using=using, savepoint=False):
        before = None
        if not kwargs.get("force_insert"):
            rows = model._base_manager.db_manager(using).filter(pk=instance.pk)
            before = rows.select_for_update().first()
        save(**kwargs)
        try:
            changes = _changes(
                before if before is not None else model(), instance, kwargs.get("update_fields")
            )
        except Exception:
            logger.exception(
                "%s: could not describe what the save changed; site_settings_changed is "
                "not sent for it",
                model._meta.label,
            )
            return
        if changes:
            transaction.on_commit(
                partial(
                    site_settings_changed.send,
                    sender=model,
                    instance=instance,
                    changes=changes,
                    using=using,
                ),
                using=using,
            )
