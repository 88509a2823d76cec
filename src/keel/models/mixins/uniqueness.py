"""Uniqueness violations reported as ``ValidationError`` instead of ``IntegrityError``.

The database is the only place where uniqueness is really enforced: two requests that both pass
``validate_unique()`` can still race to the same row.
[`BetterUniquenessErrorsMixin`][keel.models.mixins.uniqueness.BetterUniquenessErrorsMixin] turns the
``IntegrityError`` the loser gets into the ``ValidationError`` that form validation would have
raised, so the user sees a form error instead of a server error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import UniqueConstraint

from keel import compat
from keel.models.mixins._shared import UnsavedState

__all__ = ["BetterUniquenessErrorsMixin"]

# SQLSTATE 23505 is unique_violation (PostgreSQL, psycopg 3 ``sqlstate``, psycopg2 ``pgcode``).
_PG_UNIQUE_VIOLATION = "23505"
# ER_DUP_ENTRY and ER_DUP_ENTRY_WITH_KEY_NAME: "Duplicate entry '…' for key '…'".
_MYSQL_DUPLICATE_ENTRY = frozenset({1062, 1586})
_MYSQL_KEY = re.compile(r"for key '(?P<key>[^']+)'\s*$")
_SQLITE_PREFIX = "UNIQUE constraint failed: "
_SQLITE_INDEX = re.compile(r"^index '(?P<name>.+)'$")
_PG_DETAIL_KEY = re.compile(r"^Key \((?P<columns>[^()]+)\)=")


@dataclass(frozen=True)
class _Violation:
    """What a driver says about a uniqueness violation (every part optional)."""

    name: str | None = None
    table: str | None = None
    columns: tuple[str, ...] = ()
    # (table, column) pairs, when the driver names the table of each column (SQLite).
    qualified: tuple[tuple[str, str], ...] = field(default=())


def _parse_violation(exc: IntegrityError, vendor: str, tables: Iterable[str]) -> _Violation | None:
    """Read the constraint name and columns from the driver's error, or None if not unique."""
    cause = exc.__cause__
    if vendor == "postgresql":
        sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        diag = getattr(cause, "diag", None)
        if sqlstate != _PG_UNIQUE_VIOLATION or diag is None:
            return None
        detail = _PG_DETAIL_KEY.match(getattr(diag, "message_detail", None) or "")
        columns: tuple[str, ...] = ()
        if detail:
            columns = tuple(c.strip().strip('"') for c in detail["columns"].split(","))
        return _Violation(name=diag.constraint_name, table=diag.table_name, columns=columns)
    if vendor == "mysql":
        args = exc.args
        if len(args) < 2 or args[0] not in _MYSQL_DUPLICATE_ENTRY:
            return None
        match = _MYSQL_KEY.search(str(args[1]))
        if not match:
            return None
        key = match["key"]
        # MySQL >= 8.0.19 qualifies the key with its table ("table.key"); MariaDB does not.
        for table in tables:
            if key.startswith(f"{table}."):
                return _Violation(name=key[len(table) + 1 :], table=table)
        return _Violation(name=key)
    if vendor == "sqlite":
        message = str(exc.args[0]) if exc.args else ""
        if not message.startswith(_SQLITE_PREFIX):
            return None
        rest = message[len(_SQLITE_PREFIX) :]
        index = _SQLITE_INDEX.match(rest)
        if index:
            return _Violation(name=index["name"])
        # "table.col, table.col2": table names are matched against the model's own tables,
        # so neither a dot nor "_id" inside a name is ever cut.
        qualified = []
        for item in rest.split(", "):
            for table in tables:
                if item.startswith(f"{table}."):
                    qualified.append((table, item[len(table) + 1 :]))
                    break
            else:
                return None
        return _Violation(qualified=tuple(qualified))
    return None


# Columns of the constraints already looked up, per database, table and constraint name: the
# schema does not change under a running process often enough to introspect on every error.
_CONSTRAINT_COLUMNS: dict[tuple[tuple[Any, ...], str, str], tuple[str, ...]] = {}


@dataclass(frozen=True)
class _UniqueCheck:
    model: type[models.Model]
    fields: tuple[str, ...]
    constraint: UniqueConstraint | None = None


class BetterUniquenessErrorsMixin(compat.AsyncSaveOptionsMixin):
    """Report uniqueness violations as ``ValidationError``, and hide fields from their messages.

    Guarantees:

    - ``save()`` runs inside a savepoint (``transaction.atomic(using=…)``). When the database
      rejects the row for a ``unique=True`` field, a ``unique_together`` or a
      ``UniqueConstraint`` (conditional or expression-based too, where the backend supports
      them), the savepoint is rolled back, the instance gets back the pk it had before the save,
      and a ``ValidationError`` is raised with the very error ``full_clean()`` would have given
      (same message, same code, same field). The caller's transaction stays usable, also on
      PostgreSQL. The original ``IntegrityError`` is the ``__cause__``.
    - Works on PostgreSQL (``diag.constraint_name``), MariaDB/MySQL (error 1062's key name) and
      SQLite (the columns in "UNIQUE constraint failed"), mapping names through
      ``Meta.constraints``, the database's own constraint list and the fields' ``db_column``.
    - Any other ``IntegrityError`` (foreign key, not null, check) propagates unchanged.
    - Fields named in ``unique_together_hide_fields`` never appear in uniqueness messages (from
      ``validate_unique()``, ``validate_constraints()`` or a converted ``IntegrityError``): the
      error moves to the one visible field, or names the visible fields only. A violation whose
      fields are all hidden keeps its message in validation, and re-raises the
      ``IntegrityError`` on save (nothing the user can edit would fix it).
    """

    #: Convert uniqueness ``IntegrityError`` on save (set False to let it propagate, no savepoint).
    unique_from_integrity_error: ClassVar[bool] = True
    #: Fields left out of uniqueness messages (e.g. set by the view, not shown on the form).
    unique_together_hide_fields: ClassVar[tuple[str, ...]] = ()

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        if not self.unique_from_integrity_error:
            super().save(**kwargs)
            return
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        unsaved = UnsavedState(self)
        try:
            with transaction.atomic(using=using):
                super().save(**kwargs)
        except IntegrityError as exc:
            unsaved.restore(self)
            error = self.get_unique_error(exc, using=using)
            if error is None:
                raise
            raise error from exc
        except BaseException:
            unsaved.restore(self)
            raise

    @contextmanager
    def _hidden_fields_moved(self) -> Iterator[None]:
        """A ``ValidationError`` raised inside, its errors moved by ``_hide_unique_fields``."""
        try:
            yield
        except ValidationError as error:
            if not hasattr(error, "error_dict"):
                raise
            raise ValidationError(self._hide_unique_fields(error.error_dict)) from None

    def validate_unique(self, exclude: Any = None) -> None:
        with self._hidden_fields_moved():
            super().validate_unique(exclude=exclude)

    def validate_constraints(self, exclude: Any = None) -> None:
        with self._hidden_fields_moved():
            super().validate_constraints(exclude=exclude)

    def get_unique_error(self, exc: IntegrityError, *, using: str) -> ValidationError | None:
        """The ``ValidationError`` for a uniqueness ``IntegrityError``, or None to re-raise it.

        Override to map constraints keel cannot see (e.g. created by raw SQL migrations).
        """
        models_chain = [type(self), *compat.parent_models(type(self))]
        tables = sorted({m._meta.db_table for m in models_chain}, key=len, reverse=True)
        violation = _parse_violation(exc, connections[using].vendor, tables)
        if violation is None:
            return None
        check = self._find_unique_check(violation, using, tables)
        if check is None:
            return None
        errors = self._unique_check_errors(check)
        hidden = self._hide_unique_fields(errors, all_hidden_fails=True)
        return ValidationError(hidden) if hidden else None

    def _find_unique_check(
        self, violation: _Violation, using: str, tables: list[str]
    ) -> _UniqueCheck | None:
        checks = self._unique_checks()
        if violation.name:
            for check in checks:
                if check.constraint is not None and check.constraint.name == violation.name:
                    return check
        pairs = list(violation.qualified)
        if not pairs and violation.name:
            pairs = self._constraint_columns(violation.name, violation.table, using, tables)
        if not pairs and violation.columns and violation.table:
            pairs = [(violation.table, column) for column in violation.columns]
        if not pairs:
            return None
        by_column = {
            (f.model._meta.db_table, f.column): f
            for f in self._meta.concrete_fields
            if f.model is not None
        }
        found = [by_column.get(pair) for pair in pairs]
        if any(f is None for f in found):
            return None
        names = {f.name for f in found if f is not None}
        for check in checks:
            if set(check.fields) == names:
                return check
        return None

    def _unique_checks(self) -> list[_UniqueCheck]:
        """Every uniqueness rule of the model and its parents, the way Django validates them."""
        checks: list[_UniqueCheck] = []
        for model in (type(self), *compat.parent_models(type(self))):
            opts = model._meta
            for constraint in opts.constraints:
                if isinstance(constraint, UniqueConstraint):
                    checks.append(_UniqueCheck(model, tuple(constraint.fields), constraint))
            for together in opts.unique_together:
                checks.append(_UniqueCheck(model, tuple(together)))
            for f in opts.local_concrete_fields:
                if f.unique:
                    checks.append(_UniqueCheck(model, (f.name,)))
        return checks

    @staticmethod
    def _constraint_columns(
        name: str, table: str | None, using: str, tables: list[str]
    ) -> list[tuple[str, str]]:
        """Columns of the database constraint or unique index ``name`` (error path only)."""
        settings_dict = connections[using].settings_dict
        database = (using, settings_dict.get("HOST"), settings_dict.get("NAME"))
        candidates = [table] if table in tables else tables
        for candidate in candidates:
            cached = _CONSTRAINT_COLUMNS.get((database, candidate, name))
            if cached:
                return [(candidate, column) for column in cached]
        connection = connections[using]
        with connection.cursor() as cursor:
            for candidate in candidates:
                assert candidate is not None
                constraints = connection.introspection.get_constraints(cursor, candidate)
                info = constraints.get(name)
                if info and info.get("columns") and all(info["columns"]):
                    columns = tuple(info["columns"])
                    _CONSTRAINT_COLUMNS[(database, candidate, name)] = columns
                    return [(candidate, column) for column in columns]
        return []

    def _unique_check_errors(self, check: _UniqueCheck) -> dict[str, list[ValidationError]]:
        """The errors ``validate_unique()``/``validate_constraints()`` raise for ``check``."""
        constraint = check.constraint
        if constraint is not None and (
            not constraint.fields
            or constraint.condition is not None
            or constraint.violation_error_message != constraint.default_violation_error_message
        ):
            error = ValidationError(
                constraint.get_violation_error_message(), code=constraint.violation_error_code
            )
        else:
            error = self.unique_error_message(check.model, check.fields)
        if error.code == "unique" and len(check.fields) == 1:
            return {check.fields[0]: [error]}
        return {NON_FIELD_ERRORS: [error]}

    def _hide_unique_fields(
        self, errors: dict[str, list[ValidationError]], *, all_hidden_fails: bool = False
    ) -> dict[str, list[ValidationError]]:
        hidden = set(self.unique_together_hide_fields)
        if not hidden:
            return errors
        result: dict[str, list[ValidationError]] = {}
        for key, key_errors in errors.items():
            for error in key_errors:
                params = getattr(error, "params", None) or {}
                check = params.get("unique_check")
                model_class = params.get("model_class")
                if not check or model_class is None or not hidden & set(check):
                    result.setdefault(key, []).append(error)
                    continue
                visible = tuple(name for name in check if name not in hidden)
                if not visible:
                    if all_hidden_fails:
                        return {}
                    result.setdefault(key, []).append(error)
                elif len(visible) == 1:
                    message = self.unique_error_message(model_class, visible)
                    result.setdefault(visible[0], []).append(message)
                else:
                    message = self.unique_error_message(model_class, visible)
                    result.setdefault(NON_FIELD_ERRORS, []).append(message)
        return result
