"""Mixins that decide what a save writes: INSERT or UPDATE, and which columns."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models.fields import Field
from django.db.models.signals import class_prepared

from keel import compat
from keel.models.mixins.tracking import ChangeTrackingMixin, same_value

__all__ = [
    "AlwaysUpdateFieldsMixin",
    "AutoForceInsertMixin",
    "AutoRemovePKFromUpdateFieldsMixin",
    "CallFieldsPreSaveMixin",
]


class AutoForceInsertMixin(compat.AsyncSaveOptionsMixin):
    """A new instance is saved with a single INSERT, even when its primary key was preset.

    Django tries an UPDATE first for an unsaved instance whose pk was set by hand and has no
    default. When the caller passes no ``force_insert`` (and no ``force_update`` or
    ``update_fields``), this mixin forces the INSERT of the row and of its multi-table
    parents' rows. Saving an instance with the pk of an existing row therefore raises
    ``IntegrityError`` instead of overwriting it.
    """

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        if (
            self._state.adding
            and kwargs.get("force_insert") is None
            and not kwargs.get("force_update")
            and not kwargs.get("update_fields")
        ):
            parents = compat.parent_models(compat.concrete_model(type(self)))
            kwargs["force_insert"] = tuple(parents) if parents else True
        super().save(**kwargs)


def _overrides_pre_save(field: Field[Any, Any]) -> bool:
    return type(field).pre_save is not Field.pre_save


class CallFieldsPreSaveMixin(compat.AsyncSaveOptionsMixin):
    """On UPDATE, every field's ``pre_save()`` runs, whether or not it is in ``update_fields``.

    Django calls ``pre_save`` only for the fields it writes (ticket #22981), so ``auto_now``
    and other computing fields stay stale on partial saves. Before the write this mixin calls
    ``pre_save`` of each concrete non-pk field whose class overrides it (the rule Django's
    ``update_or_create`` uses), assigns the result, and adds the fields whose value changed
    to a non-empty ``update_fields``. On INSERT Django already calls every ``pre_save``.
    """

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if (
            not self._state.adding
            and not kwargs.get("force_insert")
            and (update_fields is None or update_fields)
        ):
            changed = self._keel_call_pre_save()
            if update_fields:
                kwargs["update_fields"] = {*update_fields, *changed}
        super().save(**kwargs)

    def _keel_call_pre_save(self) -> set[str]:
        meta = self._meta
        pk_fields = set(compat.pk_fields(self))
        data = self.__dict__
        changed: set[str] = set()
        for field in meta.concrete_fields:
            if field in pk_fields or field.generated or not _overrides_pre_save(field):
                continue
            if field.attname not in data:  # deferred: not loaded, not written
                continue
            before = data[field.attname]
            value = field.pre_save(self, False)
            if not same_value(field, before, value):
                setattr(self, field.attname, value)
                changed.add(field.name)
        return changed


class AlwaysUpdateFieldsMixin(compat.AsyncSaveOptionsMixin):
    """Fields named in ``always_update_fields`` are written by every partial save.

    A non-empty ``update_fields`` is widened with them. A full save (no ``update_fields``,
    with or without ``force_update``) already writes every field and is left alone; an empty
    ``update_fields`` (nothing to save) stays a no-op. Unknown names raise
    ``ImproperlyConfigured`` when the model class is prepared.
    """

    always_update_fields: ClassVar[tuple[str, ...]] = ()

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields:
            kwargs["update_fields"] = {*update_fields, *self.always_update_fields}
        super().save(**kwargs)


class AutoRemovePKFromUpdateFieldsMixin(ChangeTrackingMixin):
    """Primary-key fields in ``update_fields`` are dropped when unchanged.

    Django refuses a pk in ``update_fields``; code that builds ``update_fields`` from every
    assigned field hits that. When the pk really changed (the "save a copy under a new pk"
    idiom), the save becomes a forced INSERT of the whole row, so an existing row that already
    has the new pk raises ``IntegrityError`` instead of being overwritten. Composite primary
    keys are handled field by field.
    """

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        if not self._state.adding and not kwargs.get("force_insert"):
            pk_changed = bool(self._keel_pk_attnames.intersection(self._keel_changes()))
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                pk_names = self._keel_pk_names()
                if pk_names.intersection(update_fields):
                    if pk_changed:
                        kwargs["update_fields"] = None
                        kwargs.pop("force_update", None)
                        kwargs["force_insert"] = True
                    else:
                        kwargs["update_fields"] = set(update_fields) - pk_names
            elif pk_changed:
                kwargs.pop("force_update", None)
                kwargs["force_insert"] = True
        super().save(**kwargs)

    def _keel_pk_names(self) -> set[str]:
        names = {"pk"}
        for field in compat.pk_fields(self):
            names.update((field.name, field.attname))
        return names


def _check_always_update_fields(sender: type[models.Model], **kwargs: Any) -> None:
    if not issubclass(sender, AlwaysUpdateFieldsMixin) or sender._meta.abstract:
        return
    if isinstance(sender.always_update_fields, str):
        raise ImproperlyConfigured(
            f"{sender.__qualname__}.always_update_fields must be a tuple of field names, "
            f"got the string {sender.always_update_fields!r}."
        )
    for name in sender.always_update_fields:
        try:
            field = sender._meta.get_field(name)
        except FieldDoesNotExist:
            raise ImproperlyConfigured(
                f"{sender.__qualname__}.always_update_fields names {name!r}, which is not a "
                "field of the model."
            ) from None
        if not getattr(field, "concrete", False) or field in compat.pk_fields(sender):
            raise ImproperlyConfigured(
                f"{sender.__qualname__}.always_update_fields names {name!r}, which is not a "
                "concrete non-primary-key field."
            )


class_prepared.connect(
    _check_always_update_fields, dispatch_uid="keel.models.mixins.always_update_fields"
)
