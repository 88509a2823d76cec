"""Optimistic concurrency: a save writes only if the row still matches given conditions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, connections, models, router, transaction

from keel import compat
from keel.exceptions import (
    DatabaseUpdatePreconditionsError,
    KeelError,
    RowDeletedError,
    RowNotFoundError,
    TransactionRolledBackError,
)
from keel.models.mixins._shared import APPLIED_PRECONDITIONS, PRECONDITIONS

__all__ = ["Preconditions", "UpdatePreconditionsMixin"]


# SQLSTATE 40001 (serialization failure: PostgreSQL REPEATABLE READ / SERIALIZABLE) and
# 40P01 (deadlock); MySQL/MariaDB report 1213 (deadlock) and 1020 (record changed since read);
# SQLite reports SQLITE_BUSY (and SQLITE_BUSY_SNAPSHOT in WAL mode) when a transaction that
# has read must write while another connection is committing a write.
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
_MYSQL_DEADLOCK = 1213
_RETRY_MYSQL_CODES = frozenset({_MYSQL_DEADLOCK, 1020})


def _concrete(instance: models.Model) -> type[models.Model]:
    return compat.concrete_model(type(instance))


def is_serialization_failure(exc: BaseException) -> bool:
    """Whether a database error means "a concurrent transaction won; retry the transaction"."""
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(
        getattr(cause, "diag", None), "sqlstate", None
    )
    if sqlstate in _RETRY_SQLSTATES:
        return True
    if str(getattr(cause, "sqlite_errorname", "")).startswith("SQLITE_BUSY"):
        return True
    args = getattr(cause, "args", None) or exc.args
    return bool(args) and args[0] in _RETRY_MYSQL_CODES


def _rolls_back_transaction(exc: BaseException) -> bool:
    """Whether the database rolled back the whole transaction, not only the statement:
    MySQL/MariaDB (InnoDB) do so on a deadlock (1213)."""
    cause = exc.__cause__
    args = getattr(cause, "args", None) or exc.args
    return bool(args) and args[0] == _MYSQL_DEADLOCK


def _is_local(model: type[models.Model], lookup: str) -> bool:
    """Whether ``lookup`` names a column of ``model``'s own table."""
    try:
        field = model._meta.get_field(lookup.split("__", 1)[0])
    except FieldDoesNotExist:
        return False
    return bool(getattr(field, "concrete", False)) and field.model is model


@dataclass
class Preconditions:
    """The conditions a row must meet for a save to update it (lookups, as in ``filter()``)."""

    filters: dict[str, Any] = field(default_factory=dict)
    excludes: dict[str, Any] = field(default_factory=dict)
    #: Set by the state mixin: (field name, attname, state as loaded) to compare and set.
    state: tuple[str, str, Any] | None = None
    #: Set by the state mixin when the stored state is unknown (deferred field, preset pk):
    #: (field name, attname, target state), checked against the stored row while writing.
    unknown_state: tuple[str, str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.filters or self.excludes or self.state or self.unknown_state)


class UpdatePreconditionsMixin(compat.ConditionalUpdateMixin, compat.AsyncSaveOptionsMixin):
    """``save(pre_filters={...}, pre_excludes={...})`` updates the row only if it still matches.

    On a single-table model the check and the write are one statement:
    ``UPDATE ... WHERE pk = %s AND <filters> AND NOT (<excludes>)``. With multi-table inheritance
    the conditions are evaluated once, for the row, by the first UPDATE that writes (conditions on
    another table's columns as a subquery on the concrete model); the other tables are then written
    inside the same savepoint. When no row is updated the save raises
    [`DatabaseUpdatePreconditionsError`][keel.exceptions.DatabaseUpdatePreconditionsError] if the
    row still exists, [`RowDeletedError`][keel.exceptions.RowDeletedError] if it was deleted (it is
    never re-inserted), [`RowNotFoundError`][keel.exceptions.RowNotFoundError] for a new instance
    whose preset primary key names no row. A serialization failure of the database (a concurrent
    write under REPEATABLE READ or SERIALIZABLE, a deadlock) raises
    ``DatabaseUpdatePreconditionsError`` too. A guarded save runs in a savepoint, so a failure
    leaves the caller's transaction usable, except after a MariaDB/MySQL deadlock, which rolls back
    the whole transaction: then ``TransactionRolledBackError`` (a subclass) is raised and the
    caller's block is marked for rollback. INSERTs are not guarded.
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
                self.prepare_guarded_save(using)
                super().save(**kwargs)
        except DatabaseError as exc:
            if isinstance(exc, KeelError) or not is_serialization_failure(exc):
                raise
            conditions = self.__dict__.get(APPLIED_PRECONDITIONS) or self.get_preconditions(None)
            error_class: type[DatabaseUpdatePreconditionsError] = self.precondition_error_class
            if compat.in_atomic_block(connections[using]) and (
                transaction.get_rollback(using=using) or _rolls_back_transaction(exc)
            ):
                # The database rolled back the caller's whole transaction (an InnoDB
                # deadlock): say so, and keep the caller's block from going on.
                transaction.set_rollback(True, using=using)
                error_class = TransactionRolledBackError
            # Otherwise the savepoint was rolled back: the caller's transaction is usable,
            # and the conflict is reported like any other lost race.
            raise error_class(
                _concrete(self), self.pk, filters=conditions.filters, excludes=conditions.excludes
            ) from exc
        finally:
            self.__dict__.pop(PRECONDITIONS, None)
            self.__dict__.pop(APPLIED_PRECONDITIONS, None)

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
            self.__dict__[PRECONDITIONS] = preconditions
        return bool(preconditions)

    def prepare_guarded_save(self, using: str) -> None:
        """Called inside the guarded save's savepoint, before anything is written."""

    def get_preconditions(self, update_fields: Any) -> Preconditions:
        """The conditions of the save in progress (subclasses add theirs)."""
        active: Preconditions | None = self.__dict__.get(PRECONDITIONS)
        if active is None:
            return Preconditions()
        return Preconditions(dict(active.filters), dict(active.excludes))

    def apply_preconditions(self, update: compat.TableUpdate) -> models.QuerySet[Any] | None:
        """Return ``update.base_qs`` limited to rows meeting the conditions (``None``: no guard)."""
        conditions = self.get_preconditions(update.update_fields)
        if not (conditions.filters or conditions.excludes):
            return None
        self.__dict__[APPLIED_PRECONDITIONS] = conditions
        base_qs = update.base_qs
        table = base_qs.model
        # Conditions on this table's columns go straight into the UPDATE's WHERE (the
        # database re-checks them on the row it locks); the others (multi-table inheritance)
        # are evaluated on the concrete model by a subquery of the same statement.
        local = {k: v for k, v in conditions.filters.items() if _is_local(table, k)}
        remote = {k: v for k, v in conditions.filters.items() if k not in local}
        excludes_local = all(_is_local(table, k) for k in conditions.excludes)
        qs = base_qs.filter(**local) if local else base_qs
        if conditions.excludes and excludes_local:
            qs = qs.exclude(**conditions.excludes)
        if remote or (conditions.excludes and not excludes_local):
            guard = (
                _concrete(self)._base_manager.using(update.using).filter(pk=update.pk_val, **remote)
            )
            if conditions.excludes and not excludes_local:
                guard = guard.exclude(**conditions.excludes)
            qs = qs.filter(pk__in=guard.values("pk"))
        return qs

    # Hooks of compat.ConditionalUpdateMixin.
    def guard_update(self, update: compat.TableUpdate) -> models.QuerySet[Any] | None:
        data = self.__dict__
        # Evaluated once per save, by the first table that writes: with multi-table
        # inheritance a later table would see the row as already changed by this save.
        if PRECONDITIONS not in data or APPLIED_PRECONDITIONS in data:
            return None
        if not update.values and update.update_fields is not None:  # this table writes nothing
            return None
        return self.apply_preconditions(update)

    def update_not_applied(self, update: compat.TableUpdate) -> None:
        model = _concrete(self)
        pk_val = update.pk_val
        if update.base_qs.filter(pk=pk_val).exists():
            conditions = self.__dict__.get(APPLIED_PRECONDITIONS) or self.get_preconditions(None)
            raise self.precondition_error_class(
                model, pk_val, filters=conditions.filters, excludes=conditions.excludes
            )
        if self._state.adding:  # never loaded: the row did not disappear, it never existed
            raise RowNotFoundError(model, pk_val)
        raise self.row_deleted_error_class(model, pk_val)
