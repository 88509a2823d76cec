"""The state the save mixins share on an instance, and its contract (internal to keel).

Every mixin keeps what it must remember between two steps of one ``save()`` (or between a
save and the commit of its transaction) in the instance's ``__dict__``, under one of the keys
below. ``__dict__`` rather than attributes: keel's tracking ``__setattr__`` would otherwise
see them, and ``Model.__reduce__``/``copy`` carry them along unchanged. The keys start with
``_keel_`` so that they never meet a field's attname. No other key of this kind exists; a
mixin module imports the keys (and ``UnsavedState``) from here, never another mixin's
private names (a test checks it).

Each key, with who writes it, who reads it and when it is cleared:

- ``PRECONDITIONS`` (a ``Preconditions``): written by
  ``UpdatePreconditionsMixin.pop_preconditions`` (the state mixin adds its state check to
  it); read by ``get_preconditions`` and ``guard_update``; cleared at the end of the guarded
  ``save()`` (``finally``).
- ``APPLIED_PRECONDITIONS`` (a ``Preconditions``): written by ``apply_preconditions`` for the
  first table the guarded UPDATE writes; read by ``guard_update`` (the later tables of a
  multi-table model are not guarded again) and by the conflict error; cleared with
  ``PRECONDITIONS``.
- ``BASELINES`` (``{attname: old value}``): written by ``ChangeTrackingMixin.__setattr__`` on
  the first assignment of a loaded field; read by ``ChangeTrackingMixin`` (changes, previous
  values); cleared for the fields a save wrote, by ``refresh_from_db`` and
  ``forget_changes``.
- ``SNAPSHOTS`` (``{attname: copy}``): written by ``ChangeTrackingMixin`` on the first read of
  a mutable value (JSON, arrays); read and cleared like ``BASELINES``.
- ``JOURNAL`` (a list of entries): written by ``ChangeTrackingMixin.save_base`` inside a
  transaction; read by ``ChangeTrackingMixin``, which restores what a rolled-back save
  forgot; each entry is dropped when the outermost transaction commits.
- ``LEARNED_BASELINES`` (``{attname: stored value}``): written by the state mixins when a
  guard read the stored state; read by ``ChangeTrackingMixin.save_base`` (the previous value
  the save reports); cleared by ``save_base`` and at the start of each guarded save.
- ``SAVED_CHANGES`` (``(adding, {attname: old value})``): written by
  ``ChangeTrackingMixin.save_base`` on models that keep saved changes; read (and removed) by
  ``StateTransitionEventsMixin`` after the write.
- ``STORED_FILES`` (``(commit watch, pending files, names stored)``): written by
  ``SaveInstanceFilesMixin.save`` after an insert inside a transaction; read by the same
  mixin on the next save (the files are pending again after a rollback); cleared when the
  transaction commits or by that next save.

``settle_tracking(instance)`` lets change tracking restore what saves rolled back since
made it forget (``ChangeTrackingMixin._keel_sync``); a mixin that does not inherit change
tracking but must see the instance as the database does (the files mixin) calls it first.

``UnsavedState`` holds the primary key values and ``_state`` of a new instance before an
INSERT that may roll back; the uniqueness and files mixins restore it when their savepoint
rolls back, so the caller can fix the input and save again.

Internal: not part of keel's public API.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from keel import compat

PRECONDITIONS = "_keel_preconditions"
APPLIED_PRECONDITIONS = "_keel_applied_preconditions"
BASELINES = "_keel_baselines"
SNAPSHOTS = "_keel_snapshots"
JOURNAL = "_keel_journal"
LEARNED_BASELINES = "_keel_learned_baselines"
SAVED_CHANGES = "_keel_saved_changes"
STORED_FILES = "_keel_stored_files"


class UnsavedState:
    """Primary key values and ``_state`` of an instance before an INSERT that may roll back.

    When the savepoint of a failed save rolls back, the pk Django assigned during the save (an
    MTI parent row, an INSERT that succeeded before a later step failed) names a row that does
    not exist; putting the old values back lets the caller fix the input and save again.
    """

    __slots__ = ("adding", "db", "values")

    def __init__(self, instance: models.Model) -> None:
        self.adding = instance._state.adding
        self.db = instance._state.db
        self.values: list[tuple[str, Any]] = []
        if self.adding:
            for model in (type(instance), *compat.parent_models(type(instance))):
                for pk_field in compat.pk_fields(model):
                    self.values.append((pk_field.attname, getattr(instance, pk_field.attname)))

    def restore(self, instance: models.Model) -> None:
        if not self.adding:
            return
        for attname, value in self.values:
            setattr(instance, attname, value)
        instance._state.adding = True
        instance._state.db = self.db


def settle_tracking(instance: models.Model) -> None:
    """Undo what rolled-back saves did to the change tracking of ``instance`` (if tracked)."""
    sync = getattr(instance, "_keel_sync", None)
    if sync is not None:
        sync()
