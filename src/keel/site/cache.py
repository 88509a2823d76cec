"""The layered read path and the publish path of keel's cached project state.

Every cached model has a *version* in its database (:mod:`keel.site.versions`), incremented by
every write path inside the writing transaction. The shared store keeps, per model and
database, the version its documents were built at (the generation key), and each document
carries the version it was built at. A read looks, in order, at:

1. the request memo: a ``ContextVar`` holding a dict, opened per request by
   :class:`keel.site.middleware.RequestCacheMiddleware` (or :func:`request_scope` in a task);
   every read of the same object in one request returns the same Python object;
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
(read-your-own-writes). Writes call :func:`schedule_publish`: the version is incremented in
the transaction, and on commit the documents are made stale at once (the store's version
moves forward) and, for singletons, the new document is written. A store failure is logged
with :func:`keel.redis.log_redis_error` and never reaches the caller; readers then find the
store's version behind the database's and rebuild. While the store is failing, reads go to
the database (and skip the store for a second), never to an empty value.

Documents are JSON (never pickle)::

    {"format": 1, "model": "app.sitesettings", "gen": 7, "data": {...}}

under ``<KEY_PREFIX>:site:{<app.model>}:<kind>:<schema>:<db alias>:<language>[:<part>]``; the
braces keep a model's keys in one Redis Cluster slot.
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import json
import math
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import BaseDatabaseCache
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, router, transaction
from django.db.models import Model
from django.db.models.base import ModelState
from django.utils import translation

from keel.conf import keel_settings
from keel.redis import (
    get_async_redis,
    get_redis,
    is_configured,
    log_redis_error,
    make_key,
    redis_errors,
)
from keel.site import versions
from keel.site.codec import FORMAT, schema_id
from keel.site.tracking import InvalidationListener, get_listener

__all__ = [
    "CachedSource",
    "DjangoCacheStore",
    "Fetched",
    "InstanceTemplate",
    "RedisStore",
    "aread",
    "clear_local_copies",
    "current_language",
    "get_store",
    "publish_now",
    "read",
    "request_scope",
    "reset_process_state",
    "schedule_publish",
]

T = TypeVar("T")
M = TypeVar("M", bound=Model)

#: Seconds reads skip a store that just failed (they go to the database meanwhile).
STORE_RETRY_AFTER = 1.0

_MISSING: Any = object()

_memo: contextvars.ContextVar[dict[type[Model], dict[tuple[Any, ...], Any]] | None] = (
    contextvars.ContextVar("keel_site_request_memo", default=None)
)
_down_until = 0.0
_state_lock = threading.Lock()


# -- sources -------------------------------------------------------------------------------


class CachedSource(Generic[T]):
    """How one kind of cached object of ``model`` is built, stored and handed out.

    ``build`` reads the database and returns ``(payload, template)``; ``from_payload`` turns a
    stored payload into a template; ``materialize`` makes what a caller receives from a template
    (a private copy for model instances).
    """

    kind = "doc"
    #: Write the document of the current language at publish time (singletons), instead of
    #: letting the next reader rebuild it.
    rebuild_on_publish = False

    #: Whether the object depends on the active language (a document per language).
    per_language = True

    def __init__(self, model: type[Model]) -> None:
        self.model = model._meta.concrete_model or model

    def build(self, alias: str, language: str, part: str | None) -> tuple[Any, Any]:
        raise NotImplementedError

    def build_for_publish(self, alias: str, language: str) -> tuple[Any, Any] | None:
        """Like :meth:`build` without side effects; ``None`` when there is nothing to write."""
        return self.build(alias, language, None)

    def from_payload(self, alias: str, payload: Any) -> Any:
        raise NotImplementedError

    def materialize(self, template: Any) -> T:
        return template  # type: ignore[no-any-return]

    def gen_key(self, alias: str) -> str:
        return generation_key(self.model, alias)

    def doc_key(self, alias: str, language: str, part: str | None) -> str:
        parts = ["site", "{" + self.model._meta.label_lower + "}", self.kind]
        parts += [schema_id(self.model), alias, language]
        if part is not None:
            parts.append(_key_part(part))
        return make_key(*parts)


def generation_key(model: type[Model], alias: str = DEFAULT_DB_ALIAS) -> str:
    """The store key holding the version of ``model`` (in database ``alias``) that the
    store's documents were built at."""
    concrete = model._meta.concrete_model or model
    return make_key("site", "{" + concrete._meta.label_lower + "}", "gen", alias)


def _key_part(part: str) -> str:
    if len(part) <= 100 and part.isprintable() and not any(c.isspace() for c in part):
        return part
    return "h-" + hashlib.sha256(part.encode()).hexdigest()[:32]


def _copy(value: Any) -> Any:
    # JSON values are dicts, lists and scalars: copying those by hand is several times
    # cheaper than copy.deepcopy; anything else goes to deepcopy.
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return copy.deepcopy(value)


class InstanceTemplate:
    """A cached model instance, kept as the attribute values new copies are made from."""

    __slots__ = ("db", "model", "mutable", "values")

    def __init__(self, instance: Model) -> None:
        self.model = type(instance)
        self.db = instance._state.db
        self.values = {k: v for k, v in instance.__dict__.items() if k != "_state"}
        # Only these need a copy of their own per caller (JSON values, mixins' bookkeeping).
        self.mutable = tuple(
            k for k, v in self.values.items() if isinstance(v, dict | list | set | bytearray)
        )

    def materialize(self) -> Model:
        """A private copy: its own ``_state`` and its own mutable values, no ``__init__``."""
        new = object.__new__(self.model)
        values = self.values.copy()
        for name in self.mutable:
            values[name] = _copy(values[name])
        state = ModelState()
        state.db = self.db
        state.adding = False
        values["_state"] = state
        new.__dict__ = values
        return new


# -- stores --------------------------------------------------------------------------------


class Store(Protocol):
    name: str

    def errors(self) -> tuple[type[BaseException], ...]: ...

    def fetch(self, doc_key: str, gen_key: str, known: int | None) -> Fetched: ...

    def refill(
        self,
        doc_key: str,
        gen_key: str,
        version: int,
        raw: str,
        timeout: float,
        *,
        force: bool = False,
    ) -> None:
        """Set the store's version to ``version`` and store ``raw`` (built at it), unless the
        store holds a higher version and ``force`` is false. ``raw`` empty: version only."""

    async def afetch(self, doc_key: str, gen_key: str, known: int | None) -> Fetched: ...

    async def arefill(
        self,
        doc_key: str,
        gen_key: str,
        version: int,
        raw: str,
        timeout: float,
        *,
        force: bool = False,
    ) -> None: ...


@dataclass(frozen=True)
class Fetched:
    """What a store answered: its version (``None``: missing, lost), and the document unless
    the caller's copy (built at ``known``) is still current."""

    gen: int | None
    current: bool
    raw: bytes | str | None = None


# One round trip: the version, and the document only when the caller's copy is stale.
_FETCH_LUA = """
local gen = redis.call('GET', KEYS[2])
if not gen then
  return {0, false, redis.call('GET', KEYS[1])}
end
if ARGV[1] ~= '' and gen == ARGV[1] then
  return {1, gen}
end
return {0, gen, redis.call('GET', KEYS[1])}
"""
# A reader never moves the store's version backward (ARGV[4] = '1': a writer that just
# committed, or a reader that saw the store ahead of the database, may).
_REFILL_LUA = """
local stored = tonumber(redis.call('GET', KEYS[2]) or '-1') or -1
local version = tonumber(ARGV[1])
if stored > version and ARGV[4] ~= '1' then
  return 0
end
if stored ~= version then
  redis.call('SET', KEYS[2], ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
"""
_FETCH_SHA = hashlib.sha1(_FETCH_LUA.encode()).hexdigest()  # the id Redis gives the script
_REFILL_SHA = hashlib.sha1(_REFILL_LUA.encode()).hexdigest()  # the id Redis gives the script


def _version(value: Any) -> int | None:
    """A stored version as an int; ``None`` when missing or unreadable (treated as lost)."""
    if value is None or value is False:
        return None
    try:
        return int(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError):
        return None


def _fetched(reply: Any) -> Fetched:
    if int(reply[0]) == 1:
        return Fetched(_version(reply[1]), True)
    raw = reply[2] if len(reply) > 2 else None
    return Fetched(_version(reply[1]), False, raw or None)


def _known_text(known: int | None) -> str:
    return "" if known is None else str(known)


class RedisStore:
    """Redis through keel's pooled clients: one ``EVALSHA`` per read."""

    name = "redis"

    def errors(self) -> tuple[type[BaseException], ...]:
        return redis_errors()

    def _script(self, sha: str, script: str, *args: Any) -> Any:
        client = get_redis()
        try:
            return client.evalsha(sha, 2, *args)
        except _noscript_error():
            return client.eval(script, 2, *args)

    async def _ascript(self, sha: str, script: str, *args: Any) -> Any:
        client = get_async_redis()
        try:
            return await client.evalsha(sha, 2, *args)
        except _noscript_error():
            return await client.eval(script, 2, *args)

    def fetch(self, doc_key: str, gen_key: str, known: int | None) -> Fetched:
        reply = self._script(_FETCH_SHA, _FETCH_LUA, doc_key, gen_key, _known_text(known))
        return _fetched(reply)

    def refill(
        self,
        doc_key: str,
        gen_key: str,
        version: int,
        raw: str,
        timeout: float,
        *,
        force: bool = False,
    ) -> None:
        args = _refill_args(doc_key, gen_key, version, raw, timeout, force)
        self._script(_REFILL_SHA, _REFILL_LUA, *args)

    async def afetch(self, doc_key: str, gen_key: str, known: int | None) -> Fetched:
        reply = await self._ascript(_FETCH_SHA, _FETCH_LUA, doc_key, gen_key, _known_text(known))
        return _fetched(reply)

    async def arefill(
        self,
        doc_key: str,
        gen_key: str,
        version: int,
        raw: str,
        timeout: float,
        *,
        force: bool = False,
    ) -> None:
        args = _refill_args(doc_key, gen_key, version, raw, timeout, force)
        await self._ascript(_REFILL_SHA, _REFILL_LUA, *args)


def _refill_args(
    doc_key: str, gen_key: str, version: int, raw: str, timeout: float, force: bool
) -> tuple[Any, ...]:
    ttl = max(1, math.ceil(timeout))
    return (doc_key, gen_key, version, raw, ttl, "1" if force else "0")


def _noscript_error() -> type[Exception]:
    from redis.exceptions import NoScriptError

    return NoScriptError


class DjangoCacheStore:
    """A Django cache alias, for deployments without Redis: one ``get_many`` per read.

    Django's cache API has no compare-and-set: the version is read again right before a
    write, which narrows the window in which a slow writer can move it backward; readers
    compare it with the database's version, so such a race costs at most
    ``SITE_SETTINGS_VERIFY_INTERVAL`` seconds. A database cache is used inside a savepoint
    when the connection is in a transaction, so a failing cache query (a missing table)
    never aborts the caller's transaction.
    """

    name = "django-cache"

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def errors(self) -> tuple[type[BaseException], ...]:
        # Cache backends raise their client's own errors; none of them may break a page.
        return (Exception,)

    def _guard(self) -> Any:
        cache = caches[self.alias]
        if not isinstance(cache, BaseDatabaseCache):
            return nullcontext()
        using = router.db_for_write(cache.cache_model_class)
        if not transaction.get_connection(using).in_atomic_block:
            return nullcontext()
        return transaction.atomic(using=using)

    def fetch(self, doc_key: str, gen_key: str, known: int | None) -> Fetched:
        with self._guard():
            values = caches[self.alias].get_many([doc_key, gen_key])
        gen = _version(values.get(gen_key))
        if known is not None and gen == known:
            return Fetched(gen, True)
        return Fetched(gen, False, values.get(doc_key))

    def refill(
        self,
        doc_key: str,
        gen_key: str,
        version: int,
        raw: str,
        timeout: float,
        *,
        force: bool = False,
    ) -> None:
        cache = caches[self.alias]
        with self._guard():
            stored = _version(cache.get(gen_key))
            if stored is not None and stored > version and not force:
                return
            if stored != version:
                cache.set(gen_key, version, timeout=None)
            if raw:
                cache.set(doc_key, raw, timeout)

    async def afetch(self, doc_key: str, gen_key: str, known: int | None) -> Fetched:
        return await sync_to_async(self.fetch)(doc_key, gen_key, known)

    async def arefill(
        self,
        doc_key: str,
        gen_key: str,
        version: int,
        raw: str,
        timeout: float,
        *,
        force: bool = False,
    ) -> None:
        await sync_to_async(self.refill)(doc_key, gen_key, version, raw, timeout, force=force)


_REDIS_STORE = RedisStore()


def get_store() -> Store:
    """Redis when ``KEEL["REDIS_URL"]`` is set, else ``KEEL["SITE_SETTINGS_CACHE_ALIAS"]``."""
    if is_configured():
        return _REDIS_STORE
    return DjangoCacheStore(keel_settings.SITE_SETTINGS_CACHE_ALIAS)


def _store_failed(store: Store, operation: str, exc: BaseException) -> None:
    global _down_until
    _down_until = time.monotonic() + STORE_RETRY_AFTER
    label = "Redis" if store.name == "redis" else "The Django cache"
    log_redis_error(f"site cache {operation}", exc, store=label)


# -- documents -----------------------------------------------------------------------------


def _encode_doc(source: CachedSource[Any], version: int, payload: Any) -> str:
    label = source.model._meta.label_lower
    doc = {"format": FORMAT, "model": label, "gen": version, "data": payload}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _decode_doc(source: CachedSource[Any], raw: bytes | str, version: int, alias: str) -> Any:
    """The template stored in ``raw``, or ``_MISSING`` if it is stale, foreign or damaged."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return _MISSING
    if (
        not isinstance(doc, dict)
        or doc.get("format") != FORMAT
        or doc.get("gen") != version
        or doc.get("model") != source.model._meta.label_lower
        or "data" not in doc
    ):
        return _MISSING
    try:
        return source.from_payload(alias, doc["data"])
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError):
        # Damaged, or written by a version of the model this process does not know: a field's
        # to_python refusing a value means the same. Rebuild it.
        return _MISSING


# -- read path -----------------------------------------------------------------------------


def current_language() -> str:
    """The active language code, lower-cased (``LANGUAGE_CODE`` when none is active)."""
    return (translation.get_language() or settings.LANGUAGE_CODE).lower()


def resolve_alias(model: type[Model], using: str | None) -> str:
    """The database a cached object is read from: ``using``, or the model's write database.

    The write database, not a replica: a refill from a lagging replica would store an old
    value under a current version.
    """
    if using:
        return using
    if not router.routers:  # the common case, without the routing machinery's cost
        return DEFAULT_DB_ALIAS
    return router.db_for_write(model)


class _Entry(NamedTuple):
    """A process copy: valid until (monotonic, without client tracking), the version it was
    built at, the template, and the tracking stamp taken before the store was read (``None``:
    tracking was not live) with the store's version key the copy depends on."""

    expires: float
    version: int
    template: Any
    stamp: int | None
    gen_key: str


_local: dict[type[Model], dict[tuple[Any, ...], _Entry]] = {}
_epochs: dict[type[Model], int] = {}
_NO_ENTRIES: dict[tuple[Any, ...], _Entry] = {}

#: Bound on the process copies of one model (page SEO may be asked for many page keys).
MAX_LOCAL_ENTRIES = 1024


class _Found(NamedTuple):
    """The outcome of a miss: the version (``None``: nothing may be kept), the template, and
    what a process copy of it needs (see :class:`_Entry`)."""

    version: int | None
    template: Any
    stamp: int | None = None
    gen_key: str = ""


def _listener() -> InvalidationListener | None:
    """The process's client-tracking listener when the store is Redis, else ``None``."""
    return get_listener()


def _lkey(source: CachedSource[Any], alias: str, part: str | None) -> tuple[Any, ...]:
    return (source.kind, alias, current_language() if source.per_language else "any", part)


def _memo_get(model: type[Model], lkey: tuple[Any, ...]) -> Any:
    memo = _memo.get()
    if memo is None:
        return _MISSING
    seen = memo.get(model)
    return _MISSING if seen is None else seen.get(lkey, _MISSING)


def _memo_put(model: type[Model], lkey: tuple[Any, ...], value: Any) -> None:
    memo = _memo.get()
    if memo is not None:
        memo.setdefault(model, {})[lkey] = value


def _fresh_copy(model: type[Model], lkey: tuple[Any, ...], known: int) -> _Entry | None:
    """The process copy if it may be served without asking the store, else ``None``.

    Never when it is older than the version this process last read from the database. With
    Redis client tracking: while the listener says the store's version key did not change
    since the copy's stamp (a document rewritten at the same version holds the same data;
    a flush or a lost connection makes every stamp stale); while tracking is not live, only
    when the store is known to be down (the copy then came from the database) and inside
    ``SITE_SETTINGS_LOCAL_TTL``. Without Redis: inside ``SITE_SETTINGS_LOCAL_TTL``.
    """
    entry = _local.get(model, _NO_ENTRIES).get(lkey)
    if entry is None or entry.version < known:
        return None
    listener = _listener()
    if listener is not None:
        stamp = entry.stamp
        if stamp is not None:
            return entry if listener.is_current(entry.gen_key, stamp) else None
        if time.monotonic() >= _down_until:
            return None
    return entry if entry.expires > time.monotonic() else None


def read(source: CachedSource[T], *, using: str | None = None, part: str | None = None) -> T:
    """Return the object of ``source`` for the active language (see the module docstring)."""
    model = source.model
    alias = resolve_alias(model, using)
    lkey = _lkey(source, alias, part)
    if _scheduled and wrote_in_transaction(model, alias):
        return _overridden(model, source.materialize(source.build(alias, lkey[2], part)[1]))
    value = _memo_get(model, lkey)
    if value is not _MISSING:
        return value  # type: ignore[no-any-return]
    known = versions.known_version(model, alias)
    entry = _fresh_copy(model, lkey, known)
    if entry is not None:
        template = entry.template
    else:
        epoch = _epochs.get(model, 0)
        found = _fetch(source, alias, lkey[2], part, known)
        template = found.template
        if found.version is not None:
            _keep_local(model, lkey, epoch, found.version, found)
    value = _overridden(model, source.materialize(template))
    _memo_put(model, lkey, value)
    return value


async def aread(source: CachedSource[T], *, using: str | None = None, part: str | None = None) -> T:
    """The asyncio twin of :func:`read`: the asyncio Redis client, the same layers."""
    model = source.model
    alias = resolve_alias(model, using)
    lkey = _lkey(source, alias, part)
    value = _memo_get(model, lkey)
    if value is not _MISSING:
        return value  # type: ignore[no-any-return]
    if versions.is_due(alias):
        known = await sync_to_async(versions.known_version)(model, alias)
    else:
        known = versions.known_version(model, alias)
    entry = _fresh_copy(model, lkey, known)
    if entry is not None:
        template = entry.template
    else:
        epoch = _epochs.get(model, 0)
        found = await _afetch(source, alias, lkey[2], part, known)
        template = found.template
        if found.version is not None:
            _keep_local(model, lkey, epoch, found.version, found)
    value = _overridden(model, source.materialize(template))
    _memo_put(model, lkey, value)
    return value


def _keep_local(
    model: type[Model], lkey: tuple[Any, ...], epoch: int, version: int, found: _Found
) -> None:
    # Kept even with a TTL of 0: an expired copy still spares the document's transfer and
    # decoding when the store says its version is current.
    expires = time.monotonic() + keel_settings.SITE_SETTINGS_LOCAL_TTL
    with _state_lock:
        # A publish in this process since the read started: what was read may be older.
        if _epochs.get(model, 0) != epoch:
            return
        entries = _local.setdefault(model, {})
        if len(entries) >= MAX_LOCAL_ENTRIES:
            entries.clear()
        entries[lkey] = _Entry(expires, version, found.template, found.stamp, found.gen_key)


class _Rebuilt(NamedTuple):
    version: int | None
    payload: Any
    template: Any


def _rebuild(source: CachedSource[Any], alias: str, language: str, part: str | None) -> _Rebuilt:
    """Build from the database: outside a transaction, its version first, then the data
    (at least as new as that version); inside one, unversioned (it must not be kept)."""
    if versions.in_transaction(alias):
        payload, template = source.build(alias, language, part)
        return _Rebuilt(None, payload, template)
    version = versions.known_version(source.model, alias, refresh=True)
    payload, template = source.build(alias, language, part)
    return _Rebuilt(version, payload, template)


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


def _served(source: CachedSource[Any], fetched: Fetched, alias: str, copy: _Entry | None) -> Any:
    """The template of a store answer that may be served, or ``_MISSING`` (damaged)."""
    if fetched.current and copy is not None:
        return copy.template
    if fetched.raw is not None and fetched.gen is not None:
        return _decode_doc(source, fetched.raw, fetched.gen, alias)
    return _MISSING


def _fetch(
    source: CachedSource[Any], alias: str, language: str, part: str | None, known: int
) -> _Found:
    """The object from the store, else from the database (written back when allowed)."""
    store = get_store()
    if time.monotonic() < _down_until:
        rebuilt = _rebuild(source, alias, language, part)
        return _Found(rebuilt.version, rebuilt.template)
    gen_key = source.gen_key(alias)
    doc_key = source.doc_key(alias, language, part)
    copy = _local.get(source.model, _NO_ENTRIES).get(_lkey(source, alias, part))
    listener = _listener()
    # Taken before the store is read: an invalidation arriving after it makes the copy stale.
    stamp = listener.stamp() if listener is not None else None
    try:
        fetched = store.fetch(doc_key, gen_key, copy.version if copy is not None else None)
    except store.errors() as exc:
        _store_failed(store, "read", exc)
        rebuilt = _rebuild(source, alias, language, part)
        return _Found(rebuilt.version, rebuilt.template)
    verdict = _store_verdict(source.model, alias, fetched.gen, known)
    if verdict == _SERVE:
        template = _served(source, fetched, alias, copy)
        if template is not _MISSING:
            return _Found(fetched.gen, template, stamp, gen_key)
    rebuilt = _rebuild(source, alias, language, part)
    if rebuilt.version is not None:
        try:
            raw = _encode_doc(source, rebuilt.version, rebuilt.payload)
            overrule = verdict == _OVERRULE
            store.refill(doc_key, gen_key, rebuilt.version, raw, _timeout(), force=overrule)
        except store.errors() as exc:
            _store_failed(store, "refill", exc)
    return _Found(rebuilt.version, rebuilt.template, stamp, gen_key)


async def _afetch(
    source: CachedSource[Any], alias: str, language: str, part: str | None, known: int
) -> _Found:
    store = get_store()
    rebuild = sync_to_async(_rebuild)
    if time.monotonic() < _down_until:
        rebuilt = await rebuild(source, alias, language, part)
        return _Found(rebuilt.version, rebuilt.template)
    gen_key = source.gen_key(alias)
    doc_key = source.doc_key(alias, language, part)
    copy = _local.get(source.model, _NO_ENTRIES).get(_lkey(source, alias, part))
    listener = _listener()
    # Taken before the store is read: an invalidation arriving after it makes the copy stale.
    stamp = listener.stamp() if listener is not None else None
    try:
        fetched = await store.afetch(doc_key, gen_key, copy.version if copy is not None else None)
    except store.errors() as exc:
        _store_failed(store, "read", exc)
        rebuilt = await rebuild(source, alias, language, part)
        return _Found(rebuilt.version, rebuilt.template)
    if fetched.gen is not None and fetched.gen > known:
        verdict = await sync_to_async(_store_verdict)(source.model, alias, fetched.gen, known)
    else:
        verdict = _store_verdict(source.model, alias, fetched.gen, known)
    if verdict == _SERVE:
        template = _served(source, fetched, alias, copy)
        if template is not _MISSING:
            return _Found(fetched.gen, template, stamp, gen_key)
    rebuilt = await rebuild(source, alias, language, part)
    if rebuilt.version is not None:
        try:
            raw = _encode_doc(source, rebuilt.version, rebuilt.payload)
            overrule = verdict == _OVERRULE
            await store.arefill(doc_key, gen_key, rebuilt.version, raw, _timeout(), force=overrule)
        except store.errors() as exc:
            _store_failed(store, "refill", exc)
    return _Found(rebuilt.version, rebuilt.template, stamp, gen_key)


def _timeout() -> float:
    return keel_settings.SITE_SETTINGS_CACHE_TIMEOUT


# -- test overrides (keel.test.override_site_settings) -------------------------------------

_overrides: list[tuple[object, type[Model], dict[str, Any]]] = []


def _overridden(model: type[Model], value: T) -> T:
    if not _overrides or not isinstance(value, Model):
        return value
    for _token, target, values in _overrides:
        if target is model:
            value.__dict__.update(values)
    return value


def push_override(model: type[Model], values: dict[str, Any]) -> object:
    """Make reads of ``model`` return ``values`` (by attname) until :func:`pop_override`."""
    token = object()
    _overrides.append((token, model, values))
    clear_local_copies(model)
    return token


def pop_override(token: object) -> None:
    for index, (candidate, model, _values) in enumerate(_overrides):
        if candidate is token:
            del _overrides[index]
            clear_local_copies(model)
            return


# -- request memo and process copies -------------------------------------------------------


@contextmanager
def request_scope() -> Iterator[None]:
    """Open a request memo: inside it, each cached object is read at most once."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def _forget_memo(model: type[Model] | None) -> None:
    memo = _memo.get()
    if memo is None:
        return
    if model is None:
        memo.clear()
    else:
        memo.pop(model._meta.concrete_model or model, None)


def clear_local_copies(model: type[Model] | None = None) -> None:
    """Forget this process's copies (and the current request memo) of ``model`` or of all."""
    with _state_lock:
        models = list(_local) if model is None else [model._meta.concrete_model or model]
        for m in models:
            _epochs[m] = _epochs.get(m, 0) + 1
            _local.pop(m, None)
    _forget_memo(model)


def reset_process_state() -> None:
    """Forget every process copy, version read and store back-off (tests, ``KEEL`` changes)."""
    global _down_until
    clear_local_copies()
    versions.reset_known()
    _down_until = 0.0


# -- publish path --------------------------------------------------------------------------


@dataclass(eq=False)
class _Publication:
    sources: tuple[CachedSource[Any], ...]
    alias: str
    started: bool = field(default=False)

    def __call__(self) -> None:
        self.started = True
        publish_now(self.sources, self.alias)


# Publications waiting for a commit, by (connection, model). Weak values: Django drops the
# callbacks of a rolled-back transaction (or savepoint), the entry then disappears and the
# next write bumps the version again and schedules a new publication.
_scheduled: weakref.WeakValueDictionary[tuple[int, type[Model]], _Publication] = (
    weakref.WeakValueDictionary()
)


def wrote_in_transaction(model: type[Model], alias: str) -> bool:
    """Whether the current transaction of ``alias`` wrote ``model`` (it then reads its own
    writes from the database until it ends)."""
    connection = transaction.get_connection(alias)
    if not connection.in_atomic_block:
        return False
    pending = _scheduled.get((id(connection), model._meta.concrete_model or model))
    return pending is not None and not pending.started


def schedule_publish(sources: tuple[CachedSource[Any], ...], using: str) -> None:
    """Record a write of the sources' model: bump its version in the current transaction of
    ``using`` and publish once when that transaction commits.

    Outside a transaction it publishes at once. Several writes in one transaction bump and
    publish once. A rolled-back transaction publishes nothing (its bump rolls back too).
    """
    connection = transaction.get_connection(using)
    model = sources[0].model
    key = (id(connection), model)
    _forget_memo(model)
    if connection.in_atomic_block:
        pending = _scheduled.get(key)
        if pending is not None and not pending.started:
            return
    versions.bump(model, using)
    publication = _Publication(sources, using)
    if connection.in_atomic_block:
        _scheduled[key] = publication
    transaction.on_commit(publication, using=using, robust=True)


def publish_now(sources: tuple[CachedSource[Any], ...], alias: str) -> None:
    """Move the store to the database's committed version of the sources' model (every
    document of the model becomes stale), then write the documents that should be.

    Never raises for a store failure: it is logged, and readers notice the store is behind.
    Inside a transaction (an on-commit callback run by a test) only this process's copies are
    dropped: what the transaction sees is not committed.
    """
    model = sources[0].model
    clear_local_copies(model)
    if versions.in_transaction(alias):
        return
    store = get_store()
    version = versions.known_version(model, alias, refresh=True)
    gen_key = sources[0].gen_key(alias)
    try:
        written = False
        for source in sources:
            if not source.rebuild_on_publish:
                continue
            language = current_language() if source.per_language else "any"
            built = source.build_for_publish(alias, language)
            if built is None:
                continue
            raw = _encode_doc(source, version, built[0])
            doc_key = source.doc_key(alias, language, None)
            store.refill(doc_key, gen_key, version, raw, _timeout(), force=True)
            written = True
        if not written:
            # The version alone: every document of the model becomes stale.
            store.refill(gen_key, gen_key, version, "", 1, force=True)
    except store.errors() as exc:
        _store_failed(store, "publish", exc)
    # A read of this process that started before the publication may have kept an old copy.
    clear_local_copies(model)
