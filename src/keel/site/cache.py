"""The layered read path and the publish path of keel's cached project state.

Every cached model has a *version* in its database (``keel.site.versions``), incremented by
every write path inside the writing transaction. The shared store keeps, per model and
database, the version its documents were built at (the generation key), and each document
carries the version it was built at. A read looks, in order, at:

1. the request memo: a ``ContextVar`` holding a dict, opened per request by
   [`keel.site.middleware.RequestCacheMiddleware`][keel.site.middleware.RequestCacheMiddleware] (or
   [`request_scope`][keel.site.cache.request_scope] in a task); every read of the same object in one
   request returns the same Python object;
2. the process copy, trusted for ``KEEL["SITE_SETTINGS_LOCAL_TTL"]`` seconds, and never
   beyond the version this process last read from the database (read again every
   ``KEEL["SITE_SETTINGS_VERIFY_INTERVAL"]`` seconds);
3. the shared store, in one round trip: a Lua script returns the store's version and, unless
   the process copy was built at that version, the document; without Redis, one
   ``get_many`` in the Django cache ``KEEL["SITE_SETTINGS_CACHE_ALIAS"]``. A store version
   older than the one the process knows from the database is never served (the store lost or
   rolled back data, or a publication failed);
4. the database: its version, then the data (so the data is at least as new as the version
   it is labelled with). Outside a transaction the document is written back, only if the
   store holds no newer version (a Lua compare-and-set in Redis). Inside a transaction
   nothing read is stored anywhere: the snapshot may be older than the store, or hold
   uncommitted rows.

A transaction that wrote a cached model reads that model from the database until it ends
(read-your-own-writes). Writes call ``schedule_publish``: the version is incremented in the
transaction, and on commit the documents are made stale at once (the store's version moves forward)
and, for singletons, the new document is written. A store failure is logged with
[`keel.redis.log_redis_error`][keel.redis.log_redis_error] and never reaches the caller; readers
then find the store's version behind the database's and rebuild. While the store is failing, reads
go to the database (and skip the store for a second), never to an empty value.

Documents are JSON (never pickle)::

    {"format": 1, "model": "app.sitesettings", "gen": 7, "data": {...}}

under ``<KEY_PREFIX>:site:{<app.model>}:<kind>:<schema>:<db alias>:<language>[:<part>]``; the
braces keep a model's keys in one Redis Cluster slot.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, router
from django.db.models import Model

from keel import clock
from keel.site import publish as _publish
from keel.site import versions
from keel.site.copies import (
    NO_ENTRIES,
    Entry,
    active_overrides,
    clear_local_copies,
    epochs,
    keep_local,
    local,
    memo_get,
    memo_put,
    overridden,
    request_memo,
    request_scope,
)
from keel.site.documents import (
    MISSING,
    CachedInstance,
    CachedSource,
    current_language,
    decode_doc,
    encode_doc,
    generation_key,
)
from keel.site.publish import publish_now, schedule_publish, wrote_in_transaction
from keel.site.stores import (
    DjangoCacheStore,
    Fetched,
    RedisStore,
    Write,
    doc_timeout,
    get_store,
    reset_backoff,
    store_failed,
    store_is_down,
)
from keel.site.tracking import get_listener
from keel.site.verdicts import changes

# Re-exported for keel's own modules and tests (mypy's explicit re-export); not public API.
__all__ = [
    "CachedInstance",
    "CachedSource",
    "DjangoCacheStore",
    "RedisStore",
    "clear_local_copies",
    "generation_key",
    "publish_now",
    "request_scope",
    "schedule_publish",
]

T = TypeVar("T")


def resolve_alias(model: type[Model], using: str | None) -> str:
    """The database a cached object is read from: ``using``, or the model's write database.

    The write database, not a replica: a set from a lagging replica would store an old
    value under a current version.
    """
    if using:
        return using
    if not settings.DATABASE_ROUTERS:  # the common case, without the routing machinery's cost
        return DEFAULT_DB_ALIAS
    return router.db_for_write(model)


class _Found(NamedTuple):
    """The outcome of a miss: the version (``None``: nothing may be kept), the cached value, and
    what a process copy of it needs (see ``Entry``)."""

    version: int | None
    cached: Any
    stamp: int | None = None
    gen_key: str = ""


def _lkey(source: CachedSource[Any], alias: str, part: str | None) -> tuple[Any, ...]:
    return (source.kind, alias, current_language() if source.per_language else "any", part)


def _usable_until(entry: Entry, known: int) -> float:
    """Until when (monotonic) the process copy ``entry`` may be served without asking the
    store, barring a change that invalidates [`keel.site.verdicts`][keel.site.verdicts]; ``-inf``
    when it may not be served now.

    Never when it is older than ``known``, the version this process last read from the
    database. With Redis client tracking: while the listener says the store's version key did
    not change since the copy's stamp (a document rewritten at the same version holds the same
    data; a flush or a lost connection makes every stamp stale); while tracking is not live,
    only when the store is known to be down (the copy then came from the database) and inside
    ``SITE_SETTINGS_LOCAL_TTL``. Without Redis: inside ``SITE_SETTINGS_LOCAL_TTL``.
    """
    if entry.version < known:
        return -math.inf
    listener = get_listener()
    if listener is not None:
        stamp = entry.stamp
        if stamp is not None:
            return listener.current_until(entry.gen_key, stamp)
        if not store_is_down():
            return -math.inf
    return entry.expires


def _usable(entry: Entry, known: int) -> bool:
    """Whether the process copy ``entry`` may be served without asking the store."""
    return _usable_until(entry, known) > clock.monotonic()


def _fresh_copy(model: type[Model], lkey: tuple[Any, ...], known: int) -> Entry | None:
    """The process copy if ``_usable``, else ``None``."""
    entry = local.get(model, NO_ENTRIES).get(lkey)
    return entry if entry is not None and _usable(entry, known) else None


def read(source: CachedSource[T], *, using: str | None = None, part: str | None = None) -> T:
    """Return the object of ``source`` for the active language (see the module docstring)."""
    # The warm read: a private copy of the process copy on the verdict the full check below
    # gave last time (``source.hot``). Safe because that check recorded the verdict only for
    # the default database with no part, router, pending publication, override or memo, and
    # every change it depends on (the copy, the known version, the tracking listener's state,
    # a publication scheduled, an override, a setting) increments ``changes.count`` afterwards:
    # the verdict holds while the count is the one read before the check, no memo is open,
    # the language is the one it was for, and its earliest deadline (version re-read,
    # heartbeat, window) has not passed.
    hot = source.hot
    if hot is not None and using is None and part is None:
        get_value, count, deadline, language = hot
        if (
            count == changes.count
            and request_memo.get() is None
            and clock.monotonic() < deadline
            and (language is None or language == current_language())
        ):
            return get_value()
    return _read(source, using, part)


def _read(source: CachedSource[T], using: str | None, part: str | None) -> T:
    """``read`` without a remembered verdict: every layer, in order."""
    count = changes.count  # before anything the verdict depends on is looked at
    model = source.model
    alias = resolve_alias(model, using)
    lkey = _lkey(source, alias, part)
    if _publish.scheduled and wrote_in_transaction(model, alias):
        return overridden(model, source.get_value(source.build(alias, lkey[2], part)[1]))
    value = memo_get(model, lkey)
    if value is not MISSING:
        return value  # type: ignore[no-any-return]
    known = versions.known_version(model, alias)
    entry = local.get(model, NO_ENTRIES).get(lkey)
    until = -math.inf if entry is None else _usable_until(entry, known)
    if entry is not None and until > clock.monotonic():
        cached = entry.cached
        if (
            using is None
            and part is None
            and alias == DEFAULT_DB_ALIAS
            and not settings.DATABASE_ROUTERS
            and not _publish.pending
            and not active_overrides
            and (entry.stamp is not None or get_listener() is None)
        ):
            deadline = min(until, versions.known_until(alias))
            language = lkey[2] if source.per_language else None
            source.hot = (source.value_getter(cached), count, deadline, language)
    else:
        epoch = epochs.get(model, 0)
        cached = _keep(model, lkey, epoch, _fetch(source, alias, lkey[2], part, known))
    return _hand_out(source, lkey, cached)


async def aread(source: CachedSource[T], *, using: str | None = None, part: str | None = None) -> T:
    """The asyncio twin of ``read``: the asyncio Redis client, the same layers."""
    model = source.model
    alias = resolve_alias(model, using)
    lkey = _lkey(source, alias, part)
    # The transaction is on the connection of the sync thread that asgiref runs
    # ``sync_to_async`` code in: only asked when some transaction of the process wrote.
    if _publish.scheduled and await sync_to_async(wrote_in_transaction)(model, alias):
        built = await sync_to_async(source.build)(alias, lkey[2], part)
        return overridden(model, source.get_value(built[1]))
    value = memo_get(model, lkey)
    if value is not MISSING:
        return value  # type: ignore[no-any-return]
    if versions.is_due(alias):
        known = await sync_to_async(versions.known_version)(model, alias)
    else:
        known = versions.known_version(model, alias)
    entry = _fresh_copy(model, lkey, known)
    if entry is not None:
        cached = entry.cached
    else:
        epoch = epochs.get(model, 0)
        cached = _keep(model, lkey, epoch, await _afetch(source, alias, lkey[2], part, known))
    return _hand_out(source, lkey, cached)


def _keep(model: type[Model], lkey: tuple[Any, ...], epoch: int, found: _Found) -> Any:
    """Keep what a miss found as the process copy (when it has a version); its cached value.
    ``epoch`` is the model's, read before the miss went to the store."""
    if found.version is not None:
        keep_local(model, lkey, epoch, found.version, *found[1:])
    return found.cached


def _hand_out(source: CachedSource[T], lkey: tuple[Any, ...], cached: Any) -> T:
    """What a read returns of ``cached``, remembered by the open request memo."""
    value = overridden(source.model, source.get_value(cached))
    memo_put(source.model, lkey, value)
    return value


class _Rebuilt(NamedTuple):
    version: int | None
    payload: Any
    cached: Any


def _rebuild(source: CachedSource[Any], alias: str, language: str, part: str | None) -> _Rebuilt:
    """Build from the database: outside a transaction, its version first, then the data
    (at least as new as that version); inside one, unversioned (it must not be kept)."""
    if versions.in_transaction(alias):
        payload, cached = source.build(alias, language, part)
        return _Rebuilt(None, payload, cached)
    version = versions.known_version(source.model, alias, refresh=True)
    payload, cached = source.build(alias, language, part)
    return _Rebuilt(version, payload, cached)


def _store_verdict(model: type[Model], alias: str, gen: int | None, known: int) -> int:
    """Whether the store's version ``gen`` may be served: ``_SERVE``, ``_REBUILD`` (lost or
    behind the database) or ``_OVERRULE`` (ahead of the database: it was restored or reset,
    and the store must be set back to the database's version).

    A store ahead of what this process knows usually means another process wrote since the
    last check: the database is asked again (once) before deciding.
    """
    if gen is not None and gen > known and not versions.in_transaction(alias):
        known = versions.known_version(model, alias, refresh=True)
        if gen > known:
            return _OVERRULE
    if gen is None or gen < known:
        return _REBUILD
    return _SERVE


_SERVE, _REBUILD, _OVERRULE = 0, 1, 2


def _served(source: CachedSource[Any], fetched: Fetched, alias: str, copy: Entry | None) -> Any:
    """The cached value of a store answer that may be served, or ``MISSING`` (damaged)."""
    if fetched.current and copy is not None:
        return copy.cached
    if fetched.raw is not None and fetched.gen is not None:
        return decode_doc(source, fetched.raw, fetched.gen, alias)
    return MISSING


class _Lookup(NamedTuple):
    """What a read asks the store, and what it knows before asking."""

    gen_key: str
    doc_key: str
    copy: Entry | None
    stamp: int | None

    @property
    def known(self) -> int | None:
        return self.copy.version if self.copy is not None else None


def _lookup(source: CachedSource[Any], alias: str, language: str, part: str | None) -> _Lookup:
    listener = get_listener()
    return _Lookup(
        source.gen_key(alias),
        source.doc_key(alias, language, part),
        local.get(source.model, NO_ENTRIES).get(_lkey(source, alias, part)),
        # Taken before the store is read: an invalidation arriving after it makes the copy stale.
        listener.stamp() if listener is not None else None,
    )


def _serve(
    source: CachedSource[Any], alias: str, lookup: _Lookup, fetched: Fetched, verdict: int
) -> _Found | None:
    """The store's answer when it may be served, else ``None`` (read the database)."""
    if verdict == _SERVE:
        cached = _served(source, fetched, alias, lookup.copy)
        if cached is not MISSING:
            return _Found(fetched.gen, cached, lookup.stamp, lookup.gen_key)
    return None


def _write_back(source: CachedSource[Any], lookup: _Lookup, version: int, payload: Any) -> Write:
    """The write that sets ``payload``, rebuilt from the database at ``version``, in the store."""
    raw = encode_doc(source, version, payload)
    return Write(lookup.doc_key, lookup.gen_key, version, raw, doc_timeout())


def _fetch(
    source: CachedSource[Any], alias: str, language: str, part: str | None, known: int
) -> _Found:
    """The object from the store, else from the database (written back when allowed)."""
    store = get_store()
    if store_is_down():
        rebuilt = _rebuild(source, alias, language, part)
        return _Found(rebuilt.version, rebuilt.cached)
    lookup = _lookup(source, alias, language, part)
    try:
        fetched = store.get(lookup.doc_key, lookup.gen_key, lookup.known)
    except store.errors() as exc:
        store_failed(store, "read", exc)
        rebuilt = _rebuild(source, alias, language, part)
        return _Found(rebuilt.version, rebuilt.cached)
    verdict = _store_verdict(source.model, alias, fetched.gen, known)
    served = _serve(source, alias, lookup, fetched, verdict)
    if served is not None:
        return served
    rebuilt = _rebuild(source, alias, language, part)
    if rebuilt.version is not None:
        try:
            write = _write_back(source, lookup, rebuilt.version, rebuilt.payload)
            store.set(write, force=verdict == _OVERRULE)
        except store.errors() as exc:
            store_failed(store, "set", exc)
    return _Found(rebuilt.version, rebuilt.cached, lookup.stamp, lookup.gen_key)


async def _afetch(
    source: CachedSource[Any], alias: str, language: str, part: str | None, known: int
) -> _Found:
    store = get_store()
    rebuild = sync_to_async(_rebuild)
    if store_is_down():
        rebuilt = await rebuild(source, alias, language, part)
        return _Found(rebuilt.version, rebuilt.cached)
    lookup = _lookup(source, alias, language, part)
    try:
        fetched = await store.aget(lookup.doc_key, lookup.gen_key, lookup.known)
    except store.errors() as exc:
        store_failed(store, "read", exc)
        rebuilt = await rebuild(source, alias, language, part)
        return _Found(rebuilt.version, rebuilt.cached)
    if fetched.gen is not None and fetched.gen > known:
        verdict = await sync_to_async(_store_verdict)(source.model, alias, fetched.gen, known)
    else:
        verdict = _store_verdict(source.model, alias, fetched.gen, known)
    served = _serve(source, alias, lookup, fetched, verdict)
    if served is not None:
        return served
    rebuilt = await rebuild(source, alias, language, part)
    if rebuilt.version is not None:
        try:
            write = _write_back(source, lookup, rebuilt.version, rebuilt.payload)
            await store.aset(write, force=verdict == _OVERRULE)
        except store.errors() as exc:
            store_failed(store, "set", exc)
    return _Found(rebuilt.version, rebuilt.cached, lookup.stamp, lookup.gen_key)


def reset_process_state() -> None:
    """Forget every process copy, version read and store back-off (tests, ``KEEL`` changes)."""
    clear_local_copies()
    versions.reset_known()
    reset_backoff()
