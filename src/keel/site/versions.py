"""The committed version of each cached model, kept in the database beside its data.

Every write path of a cached model calls ``increment`` inside the writing transaction: the
model's row of [`keel.models.SiteVersion`][keel.models.SiteVersion] is incremented and
commits, or rolls back, with the data. Shared stores label every document with the version it
was built at, so the database, not the store, says which document is current:

- a store that lost data (``FLUSHDB``, eviction, a restart) or went back in time (a restart
  from an older snapshot, a failover to a lagging replica) holds a smaller version than the
  database, and readers rebuild instead of serving it;
- a publication that never reached the store (the writer timed out on the store and exited)
  leaves the database's version ahead of the store's: every process notices it at its next
  check, at most ``KEEL["SITE_SETTINGS_VERIFY_INTERVAL"]`` seconds later.

Versions are read only outside transactions (in autocommit), so a reader never labels what
it read with a version its snapshot does not hold.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import math
import secrets
import threading
from dataclasses import dataclass, field

from django.db import IntegrityError, connections, transaction
from django.db.models import F, Model

from keel import clock, compat
from keel.conf import keel_settings
from keel.site.verdicts import invalidate as _invalidate_verdicts

#: Versions start at a random number below this (exact in a Lua double, room for increments).
FIRST_VERSIONS = 2**50

_labels: dict[type[Model], str] = {}


def label_of(model: type[Model]) -> str:
    """``app_label.model_name`` of ``model``'s concrete model: the row of its version."""
    try:
        return _labels[model]
    except KeyError:
        concrete = compat.concrete_model(model)
        _labels[model] = concrete._meta.label_lower
        return _labels[model]


def in_transaction(alias: str) -> bool:
    """Whether the current thread's connection to ``alias`` is inside a transaction."""
    connection = connections[alias]
    return compat.in_atomic_block(connection) or not connection.get_autocommit()


def increment(model: type[Model], using: str) -> None:
    """Increment ``model``'s version in database ``using``, in the current transaction.

    Called by every write path after the write; the row lock it takes is held until the
    transaction ends, so two writers of one model commit their versions in order.
    """
    from keel.models import SiteVersion

    manager = SiteVersion._default_manager.db_manager(using)
    label = label_of(model)
    if manager.filter(label=label).update(version=F("version") + 1):
        return
    try:
        with transaction.atomic(using=using):
            # A random start: a database that is reset or restored does not count through
            # the numbers a store may still hold (readers overrule a store ahead of it).
            manager.create(label=label, version=secrets.randbelow(FIRST_VERSIONS) + 1)
    except IntegrityError:  # created by a concurrent writer since the update
        manager.filter(label=label).update(version=F("version") + 1)


def committed_versions(alias: str) -> dict[str, int]:
    """``{label: version}`` of every cached model in ``alias``, read in one query."""
    from keel.models import SiteVersion

    rows = SiteVersion._default_manager.db_manager(alias).values_list("label", "version")
    return {label: int(version) for label, version in rows}


@dataclass
class _Known:
    #: Monotonic time after which the versions are read again.
    due: float = -1e18
    versions: dict[str, int] = field(default_factory=dict)


_known: dict[str, _Known] = {}
_lock = threading.Lock()


def known_version(model: type[Model], alias: str, *, refresh: bool = False) -> int:
    """The version of ``model`` this process last read from ``alias`` (0: never written).

    Read again from the database when the last read is older than
    ``KEEL["SITE_SETTINGS_VERIFY_INTERVAL"]`` or ``refresh`` is true, unless the connection is
    inside a transaction (its snapshot may be older than what the process already knows).
    """
    known = _known.get(alias)
    if known is not None and not refresh and clock.monotonic() < known.due:
        return known.versions.get(label_of(model), 0)  # the common case, no query
    if not in_transaction(alias):
        versions = committed_versions(alias)
        with _lock:
            known = _Known(clock.monotonic() + verify_interval(), versions)
            _known[alias] = known
        _invalidate_verdicts()
    if known is None:
        return 0
    return known.versions.get(label_of(model), 0)


def known_until(alias: str) -> float:
    """The monotonic time at which the versions known for ``alias`` are due to be read again
    (``-inf``: never read)."""
    known = _known.get(alias)
    return -math.inf if known is None else known.due


def is_due(alias: str) -> bool:
    """Whether the next ``known_version`` of ``alias`` reads the database (cheap)."""
    known = _known.get(alias)
    return known is None or clock.monotonic() >= known.due


def verify_interval() -> float:
    return keel_settings.SITE_SETTINGS_VERIFY_INTERVAL


def reset_known(alias: str | None = None) -> None:
    """Forget the versions read from ``alias`` (every alias when ``None``: tests, ``KEEL``
    changes)."""
    with _lock:
        if alias is None:
            _known.clear()
        else:
            _known.pop(alias, None)
    _invalidate_verdicts()
