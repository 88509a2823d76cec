"""The only module of keel that touches Django internals.

Each hook below names the Django versions it was checked against (``SUPPORTED``) and says
why no public API does the job. Outside that range keel falls back to public behaviour
(slower, never wrong) where it can, and the system check ``keel.W011``
([`check_supported`][keel.compat.check_supported]) says so.

`tests/test_compat_private_names.py` fails when another module of keel imports a private
Django name or reads an undocumented attribute of a Django object.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import django
from django.core import checks
from django.core.cache.backends.db import BaseDatabaseCache
from django.db import connections, models, transaction
from django.db.models.base import ModelState
from django.db.models.fields.files import FieldFile
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init
from django.test.utils import TestContextDecorator
from django.utils.duration import duration_iso_string

# Re-exported for keel's own modules (mypy's explicit re-export); not public API.
__all__ = [
    "BaseDatabaseCache",
    "DeferredAttribute",
    "ModelState",
    "TestContextDecorator",
    "duration_iso_string",
]

DJANGO_VERSION: tuple[int, int] = (django.VERSION[0], django.VERSION[1])

#: Django releases whose internals below were read and tested.
SUPPORTED: tuple[tuple[int, int], ...] = ((5, 2), (6, 0), (6, 1))


def check_supported(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """System check ``keel.W011``: the running Django is not one of ``SUPPORTED``.

    keel still works there: the hooks gated on ``SUPPORTED`` (``FAST_FROM_DB``,
    ``ERROR_RESPONSE``) take their public fallback, and the others were read on each release
    of ``SUPPORTED`` only.
    """
    if DJANGO_VERSION in SUPPORTED:
        return []
    supported = ", ".join(f"{major}.{minor}" for major, minor in SUPPORTED)
    return [
        checks.Warning(
            f"keel was tested with Django {supported}; this is Django "
            f"{DJANGO_VERSION[0]}.{DJANGO_VERSION[1]}.",
            hint="keel uses its public fallbacks (slower model loading, error pages without "
            "keel's headers); upgrade keel or pin a supported Django release.",
            id="keel.W011",
        )
    ]


# ``django.test.utils.TestContextDecorator`` is the base of ``override_settings``: the one
# class that makes a helper work as decorator, class decorator and context manager alike.
# It is not in Django's documentation; ``keel.test.override_site_settings`` builds on it.
# Unchanged (``enable``/``disable``/``decorate_class``) in every release of ``SUPPORTED``.

# ``django.utils.duration`` is not documented; ``duration_iso_string`` is what
# ``DjangoJSONEncoder`` writes for a ``timedelta`` (ISO 8601), which keel's published
# documents must match. Same output in every release of ``SUPPORTED``.

# ``BaseDatabaseCache`` is the base of Django's database cache backend (the documented
# ``DatabaseCache`` is its only subclass in Django); keel recognises a database cache, also a
# project's subclass of the base, by it. Unchanged in every release of ``SUPPORTED``.

# ``ModelState`` is the class of the documented ``Model._state``; no public API builds one,
# and keel's cached copies of site settings build instances without running ``__init__``.


def concrete_model(model: type[models.Model]) -> type[models.Model]:
    """The concrete model behind ``model`` (itself, unless ``model`` is a proxy).

    ``Options.concrete_model`` is not part of the documented ``_meta`` API; Django's own
    ``save()``, ``contenttypes`` and admin rely on it. Unchanged since Django 1.x and in every
    release of ``SUPPORTED``.
    """
    return model._meta.concrete_model or model


def pk_fields(model: type[models.Model] | models.Model) -> Sequence[models.Field[Any, Any]]:
    """The fields of ``model``'s primary key: one, or several for a ``CompositePrimaryKey``.

    ``Options.pk_fields`` (Django 5.2, with composite primary keys) is not documented.
    Present in every release of ``SUPPORTED``.
    """
    return model._meta.pk_fields


def is_swapped(model: type[models.Model]) -> bool:
    """Whether a swappable model (``auth.User``...) was replaced by a setting.

    ``Options.swapped`` is not documented; it names the replacing setting's value. Unchanged
    in every release of ``SUPPORTED``.
    """
    return bool(model._meta.swapped)


# ``Model.__init__`` with positional values (the path ``Model.from_db`` takes) sends
# ``pre_init``, sets ``_state`` and assigns each non-deferred value with ``setattr``, then
# sends ``post_init``. ``instance_from_db`` repeats exactly that, but assigns with
# ``object.__setattr__`` so that a tracking ``__setattr__`` on the model costs nothing while
# rows load. Django offers no public way to build an instance without running the model's
# own ``__setattr__``; the steps were checked against every release in ``SUPPORTED``.
FAST_FROM_DB: bool = DJANGO_VERSION in SUPPORTED


def instance_from_db(
    cls: type[models.Model],
    db: str | None,
    field_names: Collection[str],
    values: Collection[Any],
    fetch_mode: Any = None,
) -> models.Model:
    """Build ``cls`` from a database row like ``Model.from_db`` does, bypassing ``__setattr__``.

    Signals (``pre_init``, ``post_init``) and data descriptors on the class run as in Django;
    only the model's own ``__setattr__`` override is skipped. Only valid for models that do
    not override ``__init__`` (the caller checks).
    """
    concrete = cls._meta.concrete_fields
    attnames = _plain_attnames(cls)
    if attnames is not None and len(values) == len(attnames):
        # The common path: every field loaded, no descriptor with side effects on assignment,
        # so the instance's __dict__ is filled in one step (what the per-field loop does).
        args = values if type(values) is tuple else tuple(values)
        pre_init.send(sender=cls, args=args, kwargs={})
        new = cls.__new__(cls)
        state = ModelState()
        data = new.__dict__
        data["_state"] = state
        data.update(zip(attnames, args, strict=True))
        post_init.send(sender=cls, instance=new)
        state.adding = False
        state.db = db
        if fetch_mode is not None:
            state.fetch_mode = fetch_mode
        return new
    values = list(values)
    if len(values) != len(concrete):
        values_iter = iter(values)
        values = [
            next(values_iter) if f.attname in field_names else models.DEFERRED for f in concrete
        ]
    pre_init.send(sender=cls, args=tuple(values), kwargs={})
    new = cls.__new__(cls)
    assign = object.__setattr__
    state = ModelState()
    assign(new, "_state", state)
    deferred = models.DEFERRED
    for value, field in zip(values, concrete, strict=False):
        if value is not deferred:
            assign(new, field.attname, value)
    post_init.send(sender=cls, instance=new)
    state.adding = False
    state.db = db
    if fetch_mode is not None:  # Django 6.1 records the queryset's fetch mode on the state
        state.fetch_mode = fetch_mode
    return new


# Descriptors whose __set__ only stores the value in the instance's __dict__ when the
# instance is new (ForeignKeyDeferredAttribute also clears a cached related object, which a
# new instance does not have). keel's own such descriptors set ``keel_plain_set = True``.
_PLAIN_DESCRIPTORS: tuple[type, ...] = (DeferredAttribute, ForeignKeyDeferredAttribute)
_PLAIN_ATTNAMES: dict[type[models.Model], tuple[str, ...] | None] = {}


def _plain_attnames(cls: type[models.Model]) -> tuple[str, ...] | None:
    """The concrete attnames of ``cls`` if assigning each one is a plain ``__dict__`` store."""
    try:
        return _PLAIN_ATTNAMES[cls]
    except KeyError:
        pass
    attnames: tuple[str, ...] | None = tuple(f.attname for f in cls._meta.concrete_fields)
    for attname in attnames or ():
        descriptor = getattr(cls, attname, None)
        if type(descriptor) not in _PLAIN_DESCRIPTORS and not getattr(
            descriptor, "keel_plain_set", False
        ):
            attnames = None
            break
    _PLAIN_ATTNAMES[cls] = attnames
    return attnames


def is_auto_created(model: type[models.Model]) -> bool:
    """Whether Django created ``model`` itself (the through model of a ``ManyToManyField``
    declared without ``through``).

    ``Options.auto_created`` is not documented; it names the model the table belongs to.
    Unchanged in every release of ``SUPPORTED``.
    """
    return bool(model._meta.auto_created)


def many_to_many(model: type[models.Model]) -> Sequence[models.ManyToManyField[Any, Any]]:
    """The forward ``ManyToManyField`` fields of ``model``, inherited ones included.

    ``Options.many_to_many`` is not documented (``get_fields()`` mixes in reverse relations
    and private fields). Unchanged in every release of ``SUPPORTED``.
    """
    return model._meta.many_to_many


def option_destinations(parser: Any) -> set[str]:
    """The destinations of every option a command's argument parser declares.

    ``argparse`` keeps a parser's actions in ``_actions`` and offers no public list; Django's
    ``call_command`` reads the same attribute to validate its options (every release of
    ``SUPPORTED``).
    """
    return {action.dest for action in parser._actions}


def in_atomic_block(connection: Any) -> bool:
    """Whether ``connection`` is inside ``transaction.atomic()``.

    ``BaseDatabaseWrapper.in_atomic_block`` is not documented, and no public function says
    it (``transaction.get_autocommit()`` is also false under manual transaction
    management). Unchanged in every release of ``SUPPORTED``.
    """
    return bool(connection.in_atomic_block)


# Backend operations: ``connection.ops`` is not documented. Each method below has the same
# name, arguments and result in every release of ``SUPPORTED``.


def quoter(connection: Any) -> Callable[[str], str]:
    """The function that quotes a table or column name for ``connection``'s SQL."""
    quote: Callable[[str], str] = connection.ops.quote_name
    return quote


def sequence_reset_sql(connection: Any, model_list: Sequence[type[models.Model]]) -> list[str]:
    """The statements that move the primary key sequences of ``model_list`` past their
    largest value (what ``manage.py sqlsequencereset`` prints)."""
    from django.core.management.color import no_style

    statements: list[str] = connection.ops.sequence_reset_sql(no_style(), list(model_list))
    return statements


def adapt_datetime(connection: Any, value: Any) -> Any:
    """``value`` as ``connection``'s driver takes a ``DateTimeField`` parameter."""
    return connection.ops.adapt_datetimefield_value(value)


def value_adapter(connection: Any, name: str) -> Callable[..., Any] | None:
    """The ``adapt_<kind>field_value`` method of ``connection`` named ``name``: the last
    step of the ``get_db_prep_value()`` of date, datetime and decimal fields, looked up once
    so that a bulk load calls it without the field's other steps. ``None`` when it is one of
    Django's adapters that return the value unchanged (``pass_through_adapters``): the value
    is the database value already."""
    if not (name.startswith("adapt_") and name.endswith("field_value")):
        raise ValueError(f"{name!r} is not a field value adapter of connection.ops.")
    adapter: Callable[..., Any] = getattr(connection.ops, name)
    if getattr(adapter, "__func__", None) in pass_through_adapters():
        return None
    return adapter


@functools.cache
def pass_through_adapters() -> frozenset[Callable[..., Any]]:
    """Django's value adapters that return the value they are given: the base decimal
    adapter, PostgreSQL's date and datetime adapters (psycopg adapts those types itself)."""
    from django.db.backends.base.operations import BaseDatabaseOperations

    found: set[Callable[..., Any]] = {BaseDatabaseOperations.adapt_decimalfield_value}
    try:
        from django.db.backends.postgresql.operations import DatabaseOperations
    except ImportError:  # no psycopg installed
        return frozenset(found)
    found.add(DatabaseOperations.adapt_datefield_value)
    found.add(DatabaseOperations.adapt_datetimefield_value)
    return frozenset(found)


def db_default_sql(connection: Any, field: Any) -> tuple[str, list[Any]]:
    """``(sql, params)`` of ``field``'s ``db_default``, as the schema editor writes it in the
    column's ``DEFAULT`` clause (``BaseDatabaseSchemaEditor.db_default_sql``), usable as a value
    in a statement run with ``params``: a literal ``%`` is escaped when the backend inlines
    the value (SQLite)."""
    editor = connection.SchemaEditorClass(connection)
    sql, params = editor.db_default_sql(field)
    params = list(params)
    return (sql if params else sql.replace("%", "%%")), params


# Backend feature flags: ``connection.features`` is not documented. Each flag below has the
# same name and meaning in every release of ``SUPPORTED``.


def supports_select_for_update(connection: Any) -> bool:
    """Whether the backend runs ``select_for_update()`` (False on SQLite)."""
    return bool(connection.features.has_select_for_update)


def can_return_rows_from_insert(connection: Any) -> bool:
    """Whether an ``INSERT`` can return the columns it wrote (``RETURNING``)."""
    return bool(connection.features.can_return_columns_from_insert)


def supports_conflict_target(connection: Any) -> bool:
    """Whether ``bulk_create(update_conflicts=True)`` takes ``unique_fields`` (not MySQL)."""
    return bool(connection.features.supports_update_conflicts_with_target)


def supports_nulls_distinct(connection: Any) -> bool:
    """Whether unique constraints may take NULLs as equal (``nulls_distinct=False``,
    PostgreSQL 15+); elsewhere Django leaves such a constraint out of the schema."""
    return bool(connection.features.supports_nulls_distinct_unique_constraints)


def parent_models(model: type[models.Model]) -> list[type[models.Model]]:
    """The concrete parents of a multi-table-inheritance model, nearest first.

    ``Options.get_parent_list()`` is not part of the documented ``_meta`` API (nor is
    ``Options.all_parents``, the same models as a tuple since Django 5.1); it has been
    stable since Django 1.x and is what ``Model.save`` uses itself.
    """
    return list(model._meta.get_parent_list())


class AsyncSaveOptionsMixin(models.Model):
    """Make ``asave(**options)`` accept every option ``save()`` accepts.

    Django's ``Model.asave`` takes only the four standard keywords (5.2 and 6.x) before
    calling ``save`` in a thread, so keel's save options (``pre_filters``, ``check_state``,
    ``validate``...) would be refused there. This override forwards every keyword unchanged;
    an option that no mixin consumes still reaches ``Model.save`` and raises ``TypeError``.
    """

    class Meta:
        abstract = True

    async def asave(self, *args: Any, **kwargs: Any) -> None:
        from asgiref.sync import sync_to_async

        if args:
            raise TypeError(
                f"{type(self).__name__}.asave() takes keyword arguments only, got positional "
                f"arguments {args!r}."
            )
        await sync_to_async(self.save)(**kwargs)

    asave.alters_data = True  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TableUpdate:
    """The arguments of one per-table UPDATE of ``save()`` (see ``ConditionalUpdateMixin``)."""

    base_qs: models.QuerySet[Any]
    using: str
    pk_val: Any
    values: Sequence[Any]
    update_fields: Any
    forced_update: Any


class ConditionalUpdateMixin(models.Model):
    """Route Django's per-table UPDATE through ``guard_update``.

    ``Model._do_update(base_qs, using, pk_val, values, update_fields, forced_update)`` is
    private. It is the only point inside ``save()`` where the ``WHERE`` clause of the UPDATE
    can be extended while keeping ``save()``'s semantics (``pre_save``, signals, parents,
    ``update_fields``). Django 6.0 added a seventh argument (``returning_fields``) and returns
    the updated rows instead of a boolean: extra arguments are forwarded untouched and the
    result is only tested for truth (rows were updated), which holds on 5.2 and 6.x.
    """

    class Meta:
        abstract = True

    def guard_update(self, update: TableUpdate) -> models.QuerySet[Any] | None:
        """Return the guarded queryset for this table, or ``None`` to update unguarded."""
        return None

    def update_not_applied(self, update: TableUpdate) -> None:
        """Called when a guarded UPDATE matched no row; expected to raise."""

    def _do_update(  # type: ignore[override]  # forwards 5.2's and 6.x's arguments alike
        self,
        base_qs: models.QuerySet[Any],
        using: str,
        pk_val: Any,
        values: Any,
        update_fields: Any,
        forced_update: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        update = TableUpdate(base_qs, using, pk_val, values, update_fields, forced_update)
        guarded = self.guard_update(update)
        result = super()._do_update(
            base_qs if guarded is None else guarded,
            using,
            pk_val,
            values,
            update_fields,
            forced_update,
            *args,
            **kwargs,
        )
        if guarded is not None and not result:
            self.update_not_applied(update)
        return result


def file_is_committed(value: FieldFile) -> bool:
    """Whether a file field's value is already stored (False: an upload waiting for ``save``).

    ``FieldFile._committed`` is the flag Django's own ``FileField.pre_save`` reads to decide
    whether to store the file; no public attribute says it. Unchanged in every release of
    ``SUPPORTED``.
    """
    return bool(getattr(value, "_committed", True))


# Django turns an exception raised by a view into a response (the debug page, handler404,
# handler403 or handler500, the ``got_request_exception`` signal, the ``django.request`` log)
# with ``response_for_exception``, but only after the view has returned, where the view can no
# longer add headers. keel's token confirmation view calls it itself so that its error pages
# carry the headers that keep the token in its URL out of referrers and caches. No public API
# builds that response; its signature ``(request, exc)`` is the same in every release of
# ``SUPPORTED``. Elsewhere ``error_response`` answers ``None`` and the view re-raises (the
# error page then lacks those headers).
ERROR_RESPONSE: bool = DJANGO_VERSION in SUPPORTED


def error_response(request: Any, exc: Exception) -> Any:
    """Django's response to ``exc`` raised by a view; ``None`` outside ``SUPPORTED``."""
    if not ERROR_RESPONSE:
        return None
    from django.core.handlers.exception import response_for_exception

    return response_for_exception(request, exc)


class CommitWatch:
    """Whether a write made inside a transaction is still part of it (see ``watch_commit``).

    Django runs ``on_commit`` callbacks when the outermost transaction commits and offers no
    hook for a rollback. ``BaseDatabaseWrapper.run_on_commit`` is the list ``atomic()`` prunes
    when a savepoint rolls back and empties on a full rollback or a closed connection, so a
    callback still in it belongs to a write that has not been rolled back. The list is
    rebuilt (a new object) on every rollback; while it is the same object nothing was
    rolled back, which keeps the common check O(1); its items are ``(savepoint ids,
    callback, robust)`` tuples (rebuilt too, so the callback is what is compared). Read in
    every release of ``SUPPORTED``.
    """

    __slots__ = ("_callback", "_hooks", "using")

    def __init__(self, using: str, hooks: list[Any], callback: Callable[[], None]) -> None:
        self.using = using
        self._hooks = hooks
        self._callback = callback

    def pending(self) -> bool:
        """True while the transaction is open and the write was not rolled back."""
        current = getattr(connections[self.using], "run_on_commit", None)
        if current is self._hooks:
            return True
        callback = self._callback
        return any(hook[1] is callback for hook in current or ())


def watch_commit(using: str, callback: Callable[[], None]) -> CommitWatch:
    """``transaction.on_commit(callback)`` inside an atomic block, plus a handle to ask later
    whether the block was rolled back (then ``callback`` never runs)."""
    transaction.on_commit(callback, using=using)
    return CommitWatch(using, connections[using].run_on_commit, callback)


def fill_related_ids(instance: models.Model) -> None:
    """Copy into each foreign key's attname the primary key of a related object that was
    assigned unsaved and saved since, as ``save()`` does before writing.

    ``Model._prepare_related_fields_for_save`` is the step of Django's ``save()`` that does
    it (and raises ``ValueError`` for a related object still unsaved); no public API runs it
    alone, and the columns a save writes must be known before ``save()`` reaches it. Same
    signature in every release of ``SUPPORTED``.
    """
    instance._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
