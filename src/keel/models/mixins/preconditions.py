"""Optimistic concurrency: a save writes only if the row still matches given conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.db import models, router, transaction

from keel import compat
from keel.exceptions import DatabaseUpdatePreconditionsError, RowDeletedError

__all__ = ["Preconditions", "UpdatePreconditionsMixin"]

_ACTIVE = "_keel_preconditions"
_APPLIED = "_keel_applied_preconditions"


def _concrete(instance: models.Model) -> type[models.Model]:
    return instance._meta.concrete_model or type(instance)


@dataclass
class Preconditions:
    """The conditions a row must meet for a save to update it (lookups, as in ``filter()``)."""

    filters: dict[str, Any] = field(default_factory=dict)
    excludes: dict[str, Any] = field(default_factory=dict)
    #: Set by the state mixin: (field name, attname, state as loaded) to compare and set.
    state: tuple[str, str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.filters or self.excludes or self.state)


class UpdatePreconditionsMixin(compat.ConditionalUpdateMixin, compat.AsyncSaveOptionsMixin):
    """``save(pre_filters={...}, pre_excludes={...})`` updates the row only if it still matches.

    On a single-table model the check and the write are one statement:
    ``UPDATE ... WHERE pk = %s AND <filters> AND NOT (<excludes>)``. With multi-table
    inheritance every table's UPDATE carries the same conditions (as a subquery on the
    concrete model), all inside one savepoint. When no row is updated the save raises
    :class:`~keel.exceptions.DatabaseUpdatePreconditionsError` if the row still exists,
    :class:`~keel.exceptions.RowDeletedError` if it was deleted (it is never re-inserted).
    A guarded save runs in a savepoint, so a failure leaves the caller's transaction usable.
    INSERTs are not guarded.
    """

    precondition_error_class: ClassVar[type[DatabaseUpdatePreconditionsError]] = (
        DatabaseUpdatePreconditionsError
    )
    row_deleted_error_class: ClassVar[type[RowDeletedError]] = RowDeletedError

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        if not self.pop_preconditions(kwargs):
            super().save(**kwargs)
            return
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        try:
            with transaction.atomic(using=using):
                super().save(**kwargs)
        finally:
            self.__dict__.pop(_ACTIVE, None)
            self.__dict__.pop(_APPLIED, None)

    def pop_preconditions(self, kwargs: dict[str, Any]) -> bool:
        """Take this mixin's options out of the save keywords; return whether to guard.

        The conditions are kept on the instance for the duration of the save only.
        """
        filters = kwargs.pop("pre_filters", None)
        excludes = kwargs.pop("pre_excludes", None)
        for name, value in (("pre_filters", filters), ("pre_excludes", excludes)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(
                    f"save({name}=...) takes a mapping of field lookups to values, "
                    f"got {type(value).__name__}."
                )
        preconditions = Preconditions(dict(filters or {}), dict(excludes or {}))
        if preconditions:
            self.__dict__[_ACTIVE] = preconditions
        return bool(preconditions)

    def get_preconditions(self, update_fields: Any) -> Preconditions:
        """The conditions of the save in progress (subclasses add theirs)."""
        active: Preconditions | None = self.__dict__.get(_ACTIVE)
        if active is None:
            return Preconditions()
        return Preconditions(dict(active.filters), dict(active.excludes))

    def apply_preconditions(
        self,
        base_qs: models.QuerySet[Any],
        using: str,
        pk_val: Any,
        values: Sequence[Any],
        update_fields: Any,
        force_update: Any,
    ) -> models.QuerySet[Any] | None:
        """Return ``base_qs`` restricted to rows meeting the conditions (``None``: no guard)."""
        conditions = self.get_preconditions(update_fields)
        if not (conditions.filters or conditions.excludes):
            return None
        self.__dict__[_APPLIED] = conditions
        concrete = _concrete(self)
        if base_qs.model is concrete:
            qs = base_qs
            if conditions.filters:
                qs = qs.filter(**conditions.filters)
            if conditions.excludes:
                qs = qs.exclude(**conditions.excludes)
            return qs
        # A parent table of multi-table inheritance: the conditions may name fields of any
        # table, so they are evaluated on the concrete model, in the same statement.
        guard = concrete._base_manager.using(using).filter(pk=pk_val)
        if conditions.filters:
            guard = guard.filter(**conditions.filters)
        if conditions.excludes:
            guard = guard.exclude(**conditions.excludes)
        return base_qs.filter(pk__in=guard.values("pk"))

    # Hooks of compat.ConditionalUpdateMixin.
    def guard_update(
        self,
        base_qs: models.QuerySet[Any],
        using: str,
        pk_val: Any,
        values: Sequence[Any],
        update_fields: Any,
        forced_update: Any,
    ) -> models.QuerySet[Any] | None:
        if _ACTIVE not in self.__dict__:
            return None
        return self.apply_preconditions(
            base_qs, using, pk_val, values, update_fields, forced_update
        )

    def update_not_applied(self, base_qs: models.QuerySet[Any], using: str, pk_val: Any) -> None:
        model = _concrete(self)
        if base_qs.filter(pk=pk_val).exists():
            conditions = self.__dict__.get(_APPLIED) or self.get_preconditions(None)
            raise self.precondition_error_class(
                model, pk_val, filters=conditions.filters, excludes=conditions.excludes
            )
        raise self.row_deleted_error_class(model, pk_val)
