"""Every error keel raises derives from [`KeelError`][keel.exceptions.KeelError]."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import DatabaseError

__all__ = [
    "DatabaseUpdatePreconditionsError",
    "InvalidStateError",
    "KeelError",
    "RowDeletedError",
    "RowNotFoundError",
    "TransactionRolledBackError",
    "TransitionNotAllowedError",
]


class KeelError(Exception):
    """Base class of every exception raised by keel."""


def _label(model: Any) -> str:
    meta = getattr(model, "_meta", None)
    return str(meta.label) if meta is not None else repr(model)


class _UpdateRefusedError(KeelError, DatabaseError):
    """A guarded UPDATE of one row wrote nothing, for ``reason``."""

    reason = ""

    def __init__(self, model: type[Any], pk: Any) -> None:
        self.model = model
        self.pk = pk
        super().__init__(f"Update of {_label(model)} pk={pk!r} {self._outcome()}")

    def _outcome(self) -> str:
        return f"refused: {self.reason}"


class DatabaseUpdatePreconditionsError(_UpdateRefusedError):
    """A conditional UPDATE matched no row although the row exists.

    Another transaction changed the row since it was loaded: the conditions given as
    ``pre_filters``/``pre_excludes`` (or the state guard) no longer hold. Nothing was written.
    Attributes: ``model`` (the model class), ``pk`` and ``conditions`` (a dict with the keys
    ``filters`` and ``excludes``).
    """

    def __init__(
        self,
        model: type[Any],
        pk: Any,
        filters: Mapping[str, Any] | None = None,
        excludes: Mapping[str, Any] | None = None,
    ) -> None:
        self.conditions: dict[str, dict[str, Any]] = {
            "filters": dict(filters or {}),
            "excludes": dict(excludes or {}),
        }
        super().__init__(model, pk)

    def _outcome(self) -> str:
        parts = []
        if self.conditions["filters"]:
            parts.append(f"filters {self.conditions['filters']!r}")
        if self.conditions["excludes"]:
            parts.append(f"excludes {self.conditions['excludes']!r}")
        matched = " and ".join(parts) or "its preconditions"
        return (
            f"refused: the row in the database no longer matches {matched} (a concurrent "
            "change). Nothing was written; reload the instance and retry."
        )


class RowDeletedError(_UpdateRefusedError):
    """A guarded UPDATE found no row at all: it was deleted since it was loaded.

    keel never re-inserts such a row (Django's fallback to INSERT would resurrect it).
    Attributes: ``model`` and ``pk``.
    """

    reason = (
        "the row was deleted from the database since the instance was loaded. Nothing was "
        "written (the row is not re-inserted)."
    )


class RowNotFoundError(_UpdateRefusedError):
    """A guarded save of a new instance with a preset primary key found no such row.

    Preconditions (``pre_filters``/``pre_excludes``) describe the row to update; a row that
    does not exist cannot meet them, and keel does not insert one in their place.
    Attributes: ``model`` and ``pk``.
    """

    reason = (
        "no row with this primary key exists, so its preconditions cannot hold. Nothing was "
        "written; save without pre_filters/pre_excludes to insert it."
    )


class InvalidStateError(KeelError):
    """An instance is not in one of the expected states, or in no declared state at all.

    Attributes: ``instance``, ``state`` (its current state) and ``states`` (the expected ones).
    """

    def __init__(self, instance: Any, state: Any, states: Iterable[Any]) -> None:
        self.instance = instance
        self.state = state
        self.states = tuple(states)
        expected = ", ".join(repr(s) for s in self.states) or "(none declared)"
        super().__init__(
            f"State of {_label(type(instance))} pk={getattr(instance, 'pk', None)!r} is "
            f"{state!r}, expected one of {expected}."
        )


class TransitionNotAllowedError(KeelError):
    """The state graph has no transition from the current state to the requested one, or
    one of the transition's conditions is not met.

    Attributes: ``instance``, ``source``, ``target`` and ``reason`` (why, in words).
    """

    def __init__(self, instance: Any, source: Any, target: Any, reason: str | None = None) -> None:
        self.instance = instance
        self.source = source
        self.target = target
        self.reason = reason or "the transition is not declared"
        super().__init__(
            f"Cannot change state of {_label(type(instance))} "
            f"pk={getattr(instance, 'pk', None)!r} from {source!r} to {target!r}: "
            f"{self.reason}."
        )


class TransactionRolledBackError(DatabaseUpdatePreconditionsError):
    """A guarded save lost a deadlock, and the database rolled back the caller's whole
    transaction (InnoDB does so on MariaDB and MySQL), not only the save's savepoint.

    Everything written since the outermost ``atomic()`` began is gone and that block is
    marked for rollback: its next query raises Django's ``TransactionManagementError``.
    Retry the whole block, not the save. Same attributes as
    [`DatabaseUpdatePreconditionsError`][keel.exceptions.DatabaseUpdatePreconditionsError].
    """

    def _outcome(self) -> str:
        return (
            "lost a deadlock: the database rolled back the whole transaction, not only this "
            "save. Nothing written in the enclosing atomic() block is kept and the block is "
            "marked for rollback; retry the whole block."
        )
