"""The clock keel's own expiry decisions read.

Every lifetime keel measures itself reads the time here, never from ``time`` or
``django.utils.timezone`` directly: the expiry of a token in the database store, the window of
a process copy of a cached object (``SITE_SETTINGS_LOCAL_TTL``), the interval between version
checks (``SITE_SETTINGS_VERIFY_INTERVAL``) and the pause after a failure of the shared store.
A test moves all of them at once with [`advance`][keel.clock.advance] instead of sleeping, and
puts them back with [`reset`][keel.clock.reset].

The limits of one-time codes in the database store are measured on the database's clock,
shared by every app server; what it reads is moved by the same ``offset()``. Time kept
elsewhere does not move: Redis' own TTLs (the Redis token store), and the timeouts and
heartbeat of the tracking listener, which measure real waits on a real connection.
"""

from __future__ import annotations

import datetime
import math
import threading
import time
from collections.abc import Callable

from django.utils import timezone

__all__ = ["advance", "monotonic", "now", "reset"]

#: Seconds of a clock that never goes back: ``time.monotonic`` itself until a test advances
#: it (then a shifted copy), so the readers' path pays no extra call.
monotonic: Callable[[], float] = time.monotonic

_lock = threading.Lock()
_offset = datetime.timedelta(0)


def now() -> datetime.datetime:
    """``django.utils.timezone.now()`` plus any [`advance`][keel.clock.advance]."""
    return timezone.now() + _offset


def offset() -> datetime.timedelta:
    """How far [`advance`][keel.clock.advance] has moved keel's clock (zero on the real time):
    what a time read from another clock, such as the database's, is moved by."""
    return _offset


def advance(seconds: float) -> None:
    """Move keel's clock ``seconds`` forward, for every thread of this process, until
    [`reset`][keel.clock.reset]. Raises ``ValueError`` for a negative or infinite amount:
    a monotonic clock never goes back."""
    global monotonic, _offset
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"The clock only moves forward by a finite amount, got {seconds!r}.")
    with _lock:
        _offset += datetime.timedelta(seconds=seconds)
        shift = _offset.total_seconds()
        monotonic = lambda: time.monotonic() + shift  # noqa: E731


def reset() -> None:
    """Put keel's clock back on the real time."""
    global monotonic, _offset
    with _lock:
        _offset = datetime.timedelta(0)
        monotonic = time.monotonic
