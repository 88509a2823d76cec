"""What a process keeps in memory: the request memo, the process copies, test overrides."""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from django.db.models import Model

from keel import clock, compat
from keel.conf import keel_settings
from keel.site.documents import MISSING
from keel.site.verdicts import invalidate as invalidate_verdicts

__all__ = [
    "request_scope",
]

T = TypeVar("T")

request_memo: contextvars.ContextVar[dict[type[Model], dict[tuple[Any, ...], Any]] | None] = (
    contextvars.ContextVar("keel_site_request_memo", default=None)
)
_state_lock = threading.Lock()


class Entry(NamedTuple):
    """A process copy: valid until (monotonic, without client tracking), the version it was
    built at, the cached value, and the tracking stamp taken before the store was read (``None``:
    tracking was not live) with the store's version key the copy depends on."""

    expires: float
    version: int
    cached: Any
    stamp: int | None
    gen_key: str


local: dict[type[Model], dict[tuple[Any, ...], Entry]] = {}
epochs: dict[type[Model], int] = {}
NO_ENTRIES: dict[tuple[Any, ...], Entry] = {}

#: Bound on the process copies of one model (page SEO may be asked for many page keys).
MAX_LOCAL_ENTRIES = 1024


def memo_get(model: type[Model], lkey: tuple[Any, ...]) -> Any:
    memo = request_memo.get()
    if memo is None:
        return MISSING
    seen = memo.get(model)
    return MISSING if seen is None else seen.get(lkey, MISSING)


def memo_put(model: type[Model], lkey: tuple[Any, ...], value: Any) -> None:
    memo = request_memo.get()
    if memo is not None:
        memo.setdefault(model, {})[lkey] = value


def keep_local(
    model: type[Model],
    lkey: tuple[Any, ...],
    epoch: int,
    version: int,
    cached: Any,
    stamp: int | None,
    gen_key: str,
) -> None:
    """Keep the value ``cached`` as this process's copy, unless a publication of ``model`` in this
    process happened since the read started (``epoch`` moved)."""
    # Kept even with a TTL of 0: an expired copy still spares the document's transfer and
    # decoding when the store says its version is current.
    expires = clock.monotonic() + keel_settings.SITE_SETTINGS_LOCAL_TTL
    with _state_lock:
        # A publish in this process since the read started: what was read may be older.
        if epochs.get(model, 0) != epoch:
            return
        entries = local.setdefault(model, {})
        if len(entries) >= MAX_LOCAL_ENTRIES:
            entries.clear()
        entries[lkey] = Entry(expires, version, cached, stamp, gen_key)
    invalidate_verdicts()


def _forget_in_child() -> None:
    # A forked child's copies carry stamps of its parent's listener, which the child's own
    # listener cannot vouch for: a change between the fork and the child's listener going live
    # reaches neither. The lock may have been held by a thread the child does not have.
    global _state_lock
    _state_lock = threading.Lock()
    for model in local:
        epochs[model] = epochs.get(model, 0) + 1
    local.clear()
    invalidate_verdicts()


os.register_at_fork(after_in_child=_forget_in_child)


@contextmanager
def request_scope() -> Iterator[None]:
    """Open a request memo: inside it, each cached object is read at most once."""
    token = request_memo.set({})
    try:
        yield
    finally:
        request_memo.reset(token)


def forget_memo(model: type[Model] | None) -> None:
    memo = request_memo.get()
    if memo is None:
        return
    if model is None:
        memo.clear()
    else:
        memo.pop(compat.concrete_model(model), None)


def clear_local_copies(model: type[Model] | None = None) -> None:
    """Forget this process's copies (and the current request memo) of ``model`` or of all."""
    with _state_lock:
        models = list(local) if model is None else [compat.concrete_model(model)]
        for m in models:
            epochs[m] = epochs.get(m, 0) + 1
            local.pop(m, None)
    invalidate_verdicts()
    forget_memo(model)


# -- test overrides (keel.test.override_site_settings) -------------------------------------

active_overrides: list[tuple[object, type[Model], dict[str, Any]]] = []


def overridden(model: type[Model], value: T) -> T:
    if not active_overrides or not isinstance(value, Model):
        return value
    for _token, target, values in active_overrides:
        if target is model:
            for name, field_value in values.items():
                # Through the field's descriptor: a relation given as an instance sets its
                # key and its cached object, as an assignment in a view would.
                setattr(value, name, field_value)
    return value


def push_override(model: type[Model], values: dict[str, Any]) -> object:
    """Make reads of ``model`` return ``values`` (by field name or attname, assigned as
    attributes) until ``pop_override``."""
    token = object()
    active_overrides.append((token, model, values))
    clear_local_copies(model)  # also voids remembered verdicts
    return token


def pop_override(token: object) -> None:
    for index, (candidate, model, _values) in enumerate(active_overrides):
        if candidate is token:
            del active_overrides[index]
            clear_local_copies(model)
            return
