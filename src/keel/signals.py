"""Signals sent by keel."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import models, transaction
from django.dispatch import Signal

__all__ = [
    "fixture_imported",
    "post_state_transition",
    "pre_state_transition",
    "site_settings_changed",
]

#: Sent by ``StateTransitionEventsMixin`` once per saved change of a state field, after the
#: row was written (or when the transaction commits, with ``state_transition_on_commit``),
#: with ``sender`` (the instance's class), ``instance``, ``source`` (``None`` when the
#: instance was created), ``target``, ``previous_state`` and ``state`` (the same two values,
#: older names) and ``using``. Never for a save that leaves the state alone.
post_state_transition = Signal()

#: Sent by ``StateTransitionEventsMixin`` just before a save that changes the state writes
#: the row (after the transition was checked, inside the save's transaction when it has
#: one), with ``sender``, ``instance``, ``source``, ``target`` and ``using``. A receiver that
#: raises stops the save: nothing is written.
pre_state_transition = Signal()

#: Sent on commit after a fixture import wrote rows without ``save()`` (bulk upserts,
#: deletes), with ``sender`` (the model class), ``using`` and ``result``. Caches of the model
#: (site settings, static content, page SEO) listen to it to refresh themselves.
fixture_imported = Signal()

site_settings_changed = Signal()
"""Sent once per `save()` of a singleton (a subclass of
[`SiteSettingsSyncMixin`][keel.site.models.SiteSettingsSyncMixin]) that changed a field:
in code, in the admin (a save or a "reset to default"), by
[`SingletonFixtureUpdateCommand`][keel.fixtures.SingletonFixtureUpdateCommand]. Sent when
the outermost transaction commits, never when it (or the savepoint of the save) rolls back,
with ``sender`` (the model class), ``instance``, ``using`` and ``changes``:
``{field name: (old, new)}``, each value as the field's ``value_to_string`` gives it (cut to
80 characters), a secret's as ``"••••••••"`` when set and ``""`` when not.

Old values are read from the database inside the save's transaction (the row is locked with
``select_for_update()`` where the database supports it), not from what the instance loaded,
so a stale or cached instance reports only what its save changed. Only the fields the save
writes count (``update_fields``, or the loaded fields); ``auto_now`` fields do not. A save
that changed nothing sends nothing. A save that creates the row compares with the fields'
defaults.

Writes that skip ``save()`` do not send it: ``QuerySet.update()``, ``bulk_update()``, raw
SQL, ``loaddata`` and data migrations (they still refresh the cache). Nor does a save under
manual transaction management (``set_autocommit(False)``), where Django has no commit hook."""


def send_for(
    signal: Signal,
    instance: models.Model,
    using: str | None,
    *,
    on_commit: bool = False,
    robust: bool = False,
    **kwargs: Any,
) -> None:
    """Send ``signal`` about ``instance`` with ``sender`` (its class), ``instance``, ``using``
    and ``kwargs``: now, or when the transaction of ``using`` commits (never on rollback).

    ``robust`` sends with ``send_robust`` (a receiver that raises is logged and the others
    still run) and, on commit, keeps the failure of the hook from other ``on_commit`` hooks.
    """
    send = partial(
        signal.send_robust if robust else signal.send,
        sender=type(instance),
        instance=instance,
        using=using,
        **kwargs,
    )
    if on_commit:
        transaction.on_commit(send, using=using, robust=robust)
    else:
        send()
