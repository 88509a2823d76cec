"""Change tracking: which fields really changed since the instance was loaded or saved.

Design (why it is cheap): nothing is recorded while rows load. The first assignment to a
field of a loaded instance stores the value it replaces (its *baseline*) in a small dict
created on demand; whether the field changed is decided by comparing baseline and current
value only when asked (``get_dirty_fields()``, or at save). Values that can be mutated in
place (``JSONField``, ``ArrayField``, ``HStoreField``) are copied the first time they are
read, since reading is the only way to reach them. Memory stays that of a plain instance
until a field is assigned or a mutable value is read.

Tracking follows the transaction: a save made inside ``atomic()`` keeps a note of what the
instance looked like before it (a journal entry). The note is dropped when the outermost
transaction commits; if the block that wrote is rolled back instead, the next use of the
instance (a save, ``get_dirty_fields()``...) restores it, so a retry writes the same columns.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable
from typing import Any, ClassVar, Self

from django.db import connections, models
from django.db.models.signals import class_prepared

from keel import compat
from keel.models.mixins._shared import (
    BASELINES,
    JOURNAL,
    LEARNED_BASELINES,
    SAVED_CHANGES,
    SNAPSHOTS,
)

__all__ = [
    "AutoUpdateFieldsMixin",
    "ChangeTrackingMixin",
]

_MUTABLE_TYPES = (dict, list, set, bytearray)
_MUTABLE_FIELD_TYPES = frozenset({"JSONField", "ArrayField", "HStoreField"})


_IMMUTABLE_SCALARS = (str, int, float, bool, type(None))


class _NotLoaded:
    """The previous value of a field assigned before it was ever loaded (``only()``,
    ``defer()``): unknown, so the field always counts as changed."""

    _instance: ClassVar[_NotLoaded | None] = None

    def __new__(cls) -> _NotLoaded:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_LOADED"

    def __reduce__(self) -> str:
        return "NOT_LOADED"


#: ``get_dirty_fields()`` / ``previous()`` value of a field assigned while it was deferred.
NOT_LOADED = _NotLoaded()


class _JournalEntry:
    """The tracking state of an instance just before a save made inside a transaction."""

    __slots__ = ("adding", "baselines", "db", "keys", "snapshots", "watch")

    def __init__(self, instance: models.Model, keys: dict[str, Any]) -> None:
        data = instance.__dict__
        state = data["_state"]
        self.adding: bool = state.adding
        self.db: str | None = state.db
        self.baselines: dict[str, Any] = dict(data.get(BASELINES) or ())
        self.snapshots: dict[str, Any] = dict(data.get(SNAPSHOTS) or ())
        #: Primary keys (of every table) before an INSERT, which fills them.
        self.keys = keys
        self.watch: compat.CommitWatch | None = None


def _copy_mutable(value: Any) -> Any:
    """A deep copy; JSON-shaped values (the common case) without ``deepcopy``'s memo cost."""
    kind = type(value)
    if kind is dict:
        return {k: _copy_mutable(v) for k, v in value.items()}
    if kind is list:
        return [_copy_mutable(v) for v in value]
    if isinstance(value, _IMMUTABLE_SCALARS):
        return value
    return copy.deepcopy(value)


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


def same_value(field: models.Field[Any, Any], old: Any, new: Any) -> bool:
    """Whether ``new`` stores the same value as ``old`` (coercing through ``to_python``)."""
    if old is new:
        return True
    if _is_expression(old) or _is_expression(new):
        return False
    try:
        if type(old) is type(new) or old is None or new is None:
            return bool(old == new)
        return bool(field.to_python(new) == old)
    except Exception:
        return False


class _MutableValueDescriptor(compat.DeferredAttribute):
    """Copies a mutable value (dict, list...) the first time it is read from a loaded row."""

    # Its __set__ is a plain __dict__ store: rows load through compat's one-step fill.
    keel_plain_set = True

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, _MUTABLE_TYPES):
            data = instance.__dict__
            if not data["_state"].adding:
                attname = self.field.attname
                baselines = data.get(BASELINES)
                if baselines is None or attname not in baselines:
                    snapshots = data.get(SNAPSHOTS)
                    if snapshots is None:
                        snapshots = data[SNAPSHOTS] = {}
                    if attname not in snapshots:
                        snapshots[attname] = _copy_mutable(value)
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class ChangeTrackingMixin(compat.AsyncSaveOptionsMixin):
    """Know which fields of a loaded instance really changed, and their previous values.

    Guarantees: a field is *changed* when its current value differs from the value loaded
    from (or last saved to) the database; assigning the same value, ``refresh_from_db()`` and
    loading deferred fields change nothing. Foreign keys are tracked on their attname
    (``author_id``) whether the object or the id is assigned; dicts and lists of JSON fields
    are compared with a copy, so in-place edits count; an assigned expression (``F()``)
    always counts as a change. An unsaved instance has no changes (all of it gets inserted).
    """

    # Filled per concrete class when it is prepared (see _prepare_tracking below).
    _keel_tracked: ClassVar[dict[str, models.Field[Any, Any]]] = {}
    _keel_attnames: ClassVar[dict[str, str]] = {}
    _keel_pk_attnames: ClassVar[frozenset[str]] = frozenset()
    # Primary keys of every table of the model (multi-table inheritance): set by an INSERT.
    _keel_key_attnames: ClassVar[tuple[str, ...]] = ()
    # Set by mixins that act after the write and need to know what it changed.
    _keel_keep_saved_changes: ClassVar[bool] = False

    class Meta:
        abstract = True

    # Loading: no per-field work at all.
    @classmethod
    def from_db(
        cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any
    ) -> Self:
        if compat.FAST_FROM_DB and cls.__init__ is models.Model.__init__:
            return compat.instance_from_db(cls, db, field_names, values, **kwargs)  # type: ignore[return-value]
        return super().from_db(db, field_names, values, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._keel_tracked:
            data = self.__dict__
            if not data["_state"].adding:
                baselines = data.get(BASELINES)
                if baselines is None:
                    baselines = data[BASELINES] = {}
                if name not in baselines:
                    snapshots = data.get(SNAPSHOTS)
                    if name not in data:
                        # Deferred: the stored value is unknown, so the field counts as
                        # changed (refresh_from_db() and deferred loads forget it again).
                        baselines[name] = NOT_LOADED
                    elif snapshots and name in snapshots:
                        baselines[name] = snapshots.pop(name)
                    else:
                        baselines[name] = data[name]
        super().__setattr__(name, value)

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        for key in (BASELINES, SNAPSHOTS):
            if key in state:
                state[key] = dict(state[key])
        # A journal belongs to a transaction of this process: it does not travel.
        state.pop(JOURNAL, None)
        return state

    # Public API.
    def get_dirty_fields(self) -> dict[str, Any]:
        """Map each changed field's name to its previous value (``author_id`` value for FKs).

        A field assigned while it was deferred maps to ``NOT_LOADED``.
        """
        tracked = self._keel_tracked
        return {tracked[a].name: old for a, old in self._keel_changes().items()}

    def is_dirty(self) -> bool:
        """Whether any field changed since the instance was loaded or saved."""
        return bool(self._keel_changes())

    def has_changed(self, field: str) -> bool:
        """Whether ``field`` (name or attname) changed since the instance was loaded or saved."""
        return self._keel_attname(field) in self._keel_changes()

    def previous(self, field: str) -> Any:
        """The value ``field`` had when loaded or last saved (the current one if unchanged)."""
        attname = self._keel_attname(field)
        changes = self._keel_changes()
        if attname in changes:
            return changes[attname]
        return getattr(self, attname)

    def reset_changes(self, fields: Iterable[str] | None = None) -> None:
        """Forget changes (all, or of ``fields``): call after writing them another way."""
        self._keel_forget(None if fields is None else {self._keel_attname(f) for f in fields})

    # Internals.
    def _keel_attname(self, field: str) -> str:
        try:
            return self._keel_attnames[field]
        except KeyError:
            raise ValueError(
                f"{type(self).__name__} has no concrete field named {field!r}; tracked fields: "
                f"{', '.join(sorted(self._keel_tracked))}."
            ) from None

    def _keel_changes(self) -> dict[str, Any]:
        """attname -> previous value, for the fields whose value really differs."""
        data = self.__dict__
        if JOURNAL in data:
            self._keel_settle()
        if data["_state"].adding:
            return {}
        changes: dict[str, Any] = {}
        baselines = data.get(BASELINES)
        if baselines:
            tracked = self._keel_tracked
            for attname, old in baselines.items():
                if attname in data and (
                    old is NOT_LOADED or not same_value(tracked[attname], old, data[attname])
                ):
                    changes[attname] = old
        snapshots = data.get(SNAPSHOTS)
        if snapshots:
            for attname, snapshot in snapshots.items():
                if attname in data and attname not in changes and snapshot != data[attname]:
                    changes[attname] = snapshot
        return changes

    def _keel_forget(self, attnames: set[str] | None) -> None:
        data = self.__dict__
        for key in (BASELINES, SNAPSHOTS):
            store = data.get(key)
            if store:
                if attnames is None:
                    del data[key]
                else:
                    for attname in attnames.intersection(store):
                        del store[attname]

    def _keel_sync(self) -> None:
        """Undo what rolled-back saves did to the tracking state (call before reading it)."""
        if JOURNAL in self.__dict__:
            self._keel_settle()

    def _keel_settle(self) -> None:
        """Restore the tracking state from every save whose transaction was rolled back.

        Journal entries are in save order; a rollback discards a savepoint with everything
        written after it began, so the entries rolled back are always a suffix. They are
        applied newest first: a later save may have forgotten columns the first one did not
        write, and the oldest entry has the last word on the columns they share.
        """
        data = self.__dict__
        journal: list[_JournalEntry] = data.get(JOURNAL) or []
        for index, entry in enumerate(journal):
            if entry.watch is not None and not entry.watch.pending():
                rolled_back = journal[index:]
                del journal[index:]
                for undone in reversed(rolled_back):
                    self._keel_restore(undone)
                break
        if not journal:
            data.pop(JOURNAL, None)

    def _keel_restore(self, entry: _JournalEntry) -> None:
        """Make the instance as dirty as it was before the rolled-back save, keeping the
        assignments made since (the baseline of a field is its oldest known stored value)."""
        data = self.__dict__
        baselines = dict(data.get(BASELINES) or ())
        snapshots = dict(data.get(SNAPSHOTS) or ())
        for attname, value in entry.snapshots.items():
            if attname in baselines:
                baselines[attname] = value
            else:
                snapshots[attname] = value
        for attname, value in entry.baselines.items():
            baselines[attname] = value
            snapshots.pop(attname, None)
        for key, store in ((BASELINES, baselines), (SNAPSHOTS, snapshots)):
            if store:
                data[key] = store
            else:
                data.pop(key, None)
        if entry.adding:
            state = data["_state"]
            state.adding = True
            state.db = entry.db
            data.update(entry.keys)

    def _keel_record(self, entry: _JournalEntry, using: str) -> None:
        """Keep ``entry`` until the transaction of the save that just ended commits."""
        if not compat.in_atomic_block(connections[using]):
            return
        journal: list[_JournalEntry] = self.__dict__.setdefault(JOURNAL, [])

        def committed() -> None:
            if entry in journal:
                journal.remove(entry)

        entry.watch = compat.watch_commit(using, committed)
        journal.append(entry)

    def _keel_learn_baseline(self, attname: str, stored: Any) -> None:
        """Record the stored value of a field read during the save in progress (a guard
        read it before writing): it becomes the previous value the save reports."""
        self.__dict__.setdefault(LEARNED_BASELINES, {})[attname] = stored

    def refresh_from_db(
        self, using: str | None = None, fields: Any = None, from_queryset: Any = None
    ) -> None:
        self._keel_sync()
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        if fields is None:
            self._keel_forget(None)
        else:
            names = self._keel_attnames
            self._keel_forget({names[f] for f in fields if f in names})

    def save_base(self, *args: Any, **kwargs: Any) -> None:
        changes = self._keel_changes()
        data = self.__dict__
        adding = data["_state"].adding
        entry = _JournalEntry(
            self, {a: data.get(a) for a in self._keel_key_attnames} if adding else {}
        )
        super().save_base(*args, **kwargs)
        self._keel_record(entry, data["_state"].db or "default")
        learned = data.pop(LEARNED_BASELINES, None)
        if learned:
            # A guard read the stored value: the row existed, and this is what changed.
            adding = False
            for attname, stored in learned.items():
                if same_value(self._keel_tracked[attname], stored, data.get(attname)):
                    changes.pop(attname, None)
                else:
                    changes[attname] = stored
        update_fields = kwargs.get("update_fields")
        if update_fields is None:
            saved = None
        else:
            names = self._keel_attnames
            saved = {names[f] for f in update_fields if f in names}
        if self._keel_keep_saved_changes:
            # For mixins acting after the write (state events): what this save changed.
            written = changes if saved is None else {a: v for a, v in changes.items() if a in saved}
            prior = data.get(SAVED_CHANGES)
            if prior is not None:  # several writes in one save(): keep the oldest values
                adding, written = prior[0] or adding, {**written, **prior[1]}
            data[SAVED_CHANGES] = (adding, written)
        written_names = self._keel_tracked if saved is None else saved
        copied = [a for a in written_names if isinstance(data.get(a), _MUTABLE_TYPES)]
        self._keel_forget(saved)
        if copied:
            # The caller may still hold the dict or list it read, assigned or passed to
            # create(): copy what was written, so that edits made through that reference
            # after the save are still seen.
            fresh = data.setdefault(SNAPSHOTS, {})
            for attname in copied:
                fresh[attname] = _copy_mutable(data[attname])
        for attname in self._keel_tracked if saved is None else saved:
            # An expression (F() + 1) was computed by the database: reload it on next access
            # rather than keep the expression object around (Django 6.0 does so itself).
            if attname in data and _is_expression(data[attname]):
                del data[attname]

    save_base.alters_data = True  # type: ignore[attr-defined]

    def _keel_pop_saved_changes(self) -> tuple[bool, dict[str, Any]] | None:
        result: tuple[bool, dict[str, Any]] | None = self.__dict__.pop(SAVED_CHANGES, None)
        return result


class AutoUpdateFieldsMixin(ChangeTrackingMixin):
    """``save()`` writes only the fields that changed: one UPDATE of those columns.

    When ``update_fields`` is not given on a loaded instance, it becomes the changed fields
    plus ``always_update_fields`` (if the model declares them) and ``auto_now`` fields. No
    change means no query (Django skips an empty ``update_fields``, signals included). A
    changed primary key, a save to another database or ``force_insert`` keep Django's full
    save. ``default_force_update`` supplies ``force_update`` when the caller gave none.
    """

    default_force_update: ClassVar[bool] = False

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        self._keel_sync()
        if not self._state.adding and not kwargs.get("force_insert"):
            if kwargs.get("force_update") is None and self.default_force_update:
                kwargs["force_update"] = True
            if kwargs.get("update_fields") is None:
                # An unsaved object assigned, then saved: its id is a change to write.
                compat.fill_related_ids(self)
                fields = self._keel_auto_update_fields(kwargs.get("using"))
                if fields is not None:
                    kwargs["update_fields"] = fields
        super().save(**kwargs)

    def _keel_auto_update_fields(self, using: str | None) -> set[str] | None:
        if using is not None and using != self._state.db:
            return None
        changes = self._keel_changes()
        if self._keel_pk_attnames.intersection(changes):
            return None
        tracked = self._keel_tracked
        names = {tracked[a].name for a in changes}
        if names:
            names.update(getattr(self, "always_update_fields", ()))
            names.update(
                f.name
                for f in tracked.values()
                if getattr(f, "auto_now", False) and f.attname not in self._keel_pk_attnames
            )
        return names


def _prepare_tracking(sender: type[models.Model], **kwargs: Any) -> None:
    if not issubclass(sender, ChangeTrackingMixin):
        return
    meta = sender._meta
    concrete = list(meta.concrete_fields)
    sender._keel_tracked = {f.attname: f for f in concrete}
    names: dict[str, str] = {}
    for field in concrete:
        names[field.name] = field.attname
        names[field.attname] = field.attname
    pk_fields = compat.pk_fields(sender)
    if len(pk_fields) == 1:
        names["pk"] = pk_fields[0].attname
    sender._keel_attnames = names
    sender._keel_pk_attnames = frozenset(f.attname for f in pk_fields)
    sender._keel_key_attnames = tuple(
        dict.fromkeys(
            f.attname
            for model in (sender, *compat.parent_models(sender))
            for f in compat.pk_fields(model)
        )
    )
    for field in concrete:
        if field.get_internal_type() not in _MUTABLE_FIELD_TYPES:
            continue
        # Only the stock descriptor is replaced; a custom one (a third-party field's) keeps
        # working, without in-place mutation tracking.
        if type(getattr(sender, field.attname, None)) is compat.DeferredAttribute:
            setattr(sender, field.attname, _MutableValueDescriptor(field))


class_prepared.connect(_prepare_tracking, dispatch_uid="keel.models.mixins.tracking")
