"""What a save of a singleton changed, and the
[`site_settings_changed`][keel.signals.site_settings_changed] signal that reports it.

Both sides of a change are read from the database inside the save's own transaction: the
row before the save (locked first) and the row after it. An instance read from keel's
cache, or loaded before someone else saved, would report changes that are not the ones this
save made; an instance's own value (``Decimal("1.005")`` on two decimal places, a tuple in
a JSON field) is not what the database keeps, and would report a change on every save.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connections, models, router, transaction
from django.utils.text import Truncator

from keel import compat
from keel.signals import send_for, site_settings_changed
from keel.site.encryption import is_secret_field

logger = logging.getLogger(__name__)

MASK = "••••••••"
"""Shown instead of a secret's value in the admin history and in ``site_settings_changed``."""

SHOWN_CHARS = 80
"""How many characters of a value the history and the signal show (a cut is marked ``…``)."""

# Characters shown before the first difference when two long values differ only past the cut.
_LEAD = 20


def shown_value(field: models.Field[Any, Any], instance: models.Model) -> str:
    """A field's value as the history and the signal show it: secrets masked, long text cut
    to [`SHOWN_CHARS`][keel.site.changes.SHOWN_CHARS] characters, the cut marked ``…``."""
    if is_secret_field(field):
        return MASK if field.value_from_object(instance) else ""
    return Truncator(field.value_to_string(instance)).chars(SHOWN_CHARS)


def _window(text: str, start: int) -> str:
    """``SHOWN_CHARS`` characters of ``text`` from ``start``, each cut marked ``…``."""
    if start == 0:
        return Truncator(text).chars(SHOWN_CHARS)
    rest = text[start:]
    if len(rest) + 1 <= SHOWN_CHARS:
        return "…" + rest
    return "…" + rest[: SHOWN_CHARS - 2] + "…"


def shown_pair(
    field: models.Field[Any, Any], old: models.Model, new: models.Model
) -> tuple[str, str]:
    """``(old, new)`` as shown for a field whose value differs between ``old`` and ``new``.

    Values that read alike once cut to ``SHOWN_CHARS`` are both shown from shortly before
    their first difference, with the cut marked ``…``, so the two shown values differ.
    Secrets are masked: a secret changed from one value to another shows the mask twice.
    """
    if is_secret_field(field):
        return shown_value(field, old), shown_value(field, new)
    before, after = field.value_to_string(old), field.value_to_string(new)
    shown = Truncator(before).chars(SHOWN_CHARS), Truncator(after).chars(SHOWN_CHARS)
    if shown[0] != shown[1] or before == after:
        return shown
    first = next(
        (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b),
        min(len(before), len(after)),
    )
    start = max(0, first - _LEAD)
    return _window(before, start), _window(after, start)


def _compared(field: models.Field[Any, Any], instance: models.Model) -> Any:
    value = field.value_from_object(instance)
    if isinstance(field, models.FileField):
        # An empty file is ``None`` in some instances and an empty ``FieldFile`` in others.
        return getattr(value, "name", value) if value else ""
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


def shown_changes(
    old: models.Model, new: models.Model, fields: Iterable[models.Field[Any, Any]]
) -> dict[str, tuple[str, str]]:
    """``{name: (old, new)}`` for each of ``fields`` whose value differs between the two
    instances (both as read from the database), shown as
    [`shown_pair`][keel.site.changes.shown_pair] shows them."""
    return {
        field.name: shown_pair(field, old, new)
        for field in fields
        if _compared(field, old) != _compared(field, new)
    }


def locked_row(model: type[models.Model], pk: Any, using: str) -> models.Model | None:
    """The row ``pk`` of ``model`` read for a write in the current transaction, or ``None``.

    Call it inside ``transaction.atomic(using=using)``. Where the database has
    ``SELECT … FOR UPDATE`` the read locks the row. SQLite has no row lock: a transaction
    that reads first and writes next must upgrade its lock, and fails with "database is
    locked" when another transaction wrote meanwhile. There, a write that changes nothing
    takes the database's write lock before the read (waiting for a concurrent writer, like
    any save), so the read sees the latest commit and the save that follows cannot fail.
    """
    rows: models.QuerySet[Any] = models.QuerySet(model, using=using).filter(pk=pk)
    if not compat.supports_select_for_update(connections[using]):
        # A plain queryset: the base manager's update() would publish the cache.
        pk_name = model._meta.pk.attname
        rows.update(**{pk_name: models.F(pk_name)})
        return rows.first()
    return rows.select_for_update().first()


def saved_with_changes(
    instance: models.Model, save: Callable[..., None], kwargs: dict[str, Any]
) -> None:
    """Run ``save(**kwargs)`` for ``instance`` and send ``site_settings_changed`` when the
    outermost transaction commits, if the save changed any field in the database.

    The row is locked and read before the save and read again after it, in the same
    transaction: two concurrent saves each report what they changed, and a value the
    database keeps otherwise than the instance holds is compared as kept. A save that creates
    the row compares with the fields' defaults. Receivers are called robustly: one that
    raises is logged (by ``django.dispatch``, naming it) and breaks neither the save, nor the
    other receivers, nor other ``on_commit`` hooks. Under manual transaction management
    (``set_autocommit(False)``), Django has no commit hook: the save runs alone and nothing
    is sent. ``update_fields=[]`` writes nothing, as in Django. Describing the changes never
    fails the save: an error there is logged and nothing is sent.
    """
    model = type(instance)
    using = kwargs.get("using") or router.db_for_write(model, instance=instance)
    connection = connections[using]
    update_fields = kwargs.get("update_fields")
    if update_fields is not None:
        update_fields = list(update_fields)  # read twice: a generator would be used up
        kwargs = {**kwargs, "update_fields": update_fields}
    if (not compat.in_atomic_block(connection) and not connection.get_autocommit()) or (
        update_fields == []
    ):
        save(**kwargs)
        return
    with transaction.atomic(using=using, savepoint=False):
        before = None
        if not kwargs.get("force_insert"):
            before = locked_row(model, instance.pk, using)
        save(**kwargs)
        try:
            after = models.QuerySet(model, using=using).filter(pk=instance.pk).first()
            changes: dict[str, tuple[str, str]] = (
                {}
                if after is None
                else shown_changes(
                    before if before is not None else model(),
                    after,
                    _written_fields(instance, update_fields),
                )
            )
        except Exception:
            logger.exception(
                "%s: could not describe what the save changed; site_settings_changed is "
                "not sent for it",
                model._meta.label,
            )
            return
        if changes:
            send_for(
                site_settings_changed, instance, using, on_commit=True, robust=True, changes=changes
            )
