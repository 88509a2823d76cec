"""The change counter behind the warm read's remembered verdict.

A warm read ([`keel.site.cache.read`][keel.site.cache.read]) remembers, per cached object,
that the full check passed, the value of ``changes.count`` read before that check started,
and the earliest deadline the check used. Everything the full check depends on calls
``invalidate`` after it changes: a process copy kept or dropped, a version read from the database
or forgotten, a publication scheduled, a test override, a change of settings, every change
of state of the tracking listener (an invalidation, a flush, going live, a lost connection,
``close``) and a fork. A remembered verdict is used only while the counter has not moved and
its deadline has not passed, so it never serves what the full check would refuse.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.signals import setting_changed


class _Counter:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


#: Read without a lock by warm reads (one attribute); written under ``_lock`` only, so that
#: it never moves back to a value a remembered verdict holds.
changes = _Counter()
_lock = threading.Lock()


def invalidate() -> None:
    """Make every remembered verdict void (call it after the change it reports)."""
    with _lock:
        changes.count += 1


def _after_fork_in_child() -> None:
    # The lock may have been held by a thread that does not exist in the child.
    global _lock
    _lock = threading.Lock()
    invalidate()


def _invalidate_on_setting_changed(**kwargs: Any) -> None:
    # Any setting: routers, KEEL (windows, tracking), languages.
    invalidate()


os.register_at_fork(after_in_child=_after_fork_in_child)
setting_changed.connect(_invalidate_on_setting_changed, dispatch_uid="keel.site.verdicts")
