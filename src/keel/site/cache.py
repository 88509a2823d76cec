"""The layered read path and the publish path of keel's cached project state.

A read looks, in order, at:

1. the request memo: a ``ContextVar`` holding a dict, opened per request by
   :class:`keel.site.middleware.RequestCacheMiddleware` (or :func:`request_scope` in a task);
   every read of the same object in one request returns the same Python object;
2. the process copy, trusted for ``KEEL["SITE_SETTINGS_LOCAL_TTL"]`` seconds (0: ask the
   store on every read outside a request);
3. the shared store, in one round trip: a Lua script returns the model's generation and,
   unless the process copy was built at that generation (then only its window is renewed,
   nothing is transferred or decoded), the JSON document; without Redis, one ``get_many``
   in the Django cache ``KEEL["SITE_SETTINGS_CACHE_ALIAS"]``;
4. the database, after which the document is written back only if the generation read in
   step 3 is still current (a Lua compare-and-set in Redis), so a slow reader can never
   overwrite what a writer published after it.

Writes call :func:`schedule_publish`, which runs once per transaction in
``transaction.on_commit``: it increments the model's generation (every document of the model
becomes stale at once: all languages, all pages, old page keys after a rename) and, for
singletons, writes the new document. A store failure is logged with
:func:`keel.redis.log_redis_error` and never reaches the caller; the failed increment is
retried by the same process at its next successful contact with the store. While the store
is failing, reads go to the database (and skip the store for a second), never to an empty
value.

Documents are JSON (never pickle)::

    {"format": 1, "model": "app.sitesettings", "gen": "7", "data": {...}}

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
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
from keel.site.codec import FORMAT, schema_id

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
_local: dict[type[Model], dict[tuple[Any, ...], tuple[float, str | None, Any]]] = {}
_epochs: dict[type[Model], int] = {}
_pending: set[str] = set()
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

    def gen_key(self) -> str:
        return generation_key(self.model)

    def doc_key(self, alias: str, language: str, part: str | None) -> str:
        parts = ["site", "{" + self.model._meta.label_lower + "}", self.kind]
        parts += [schema_id(self.model), alias, language]
        if part is not None:
            parts.append(_key_part(part))
        return make_key(*parts)


def generation_key(model: type[Model]) -> str:
    """The Redis (or cache) key of ``model``'s generation counter."""
    concrete = model._meta.concrete_model or model
    return make_key("site", "{" + concrete._meta.label_lower + "}", "gen")


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

    def fetch(self, doc_key: str, gen_key: str, known_gen: str) -> Fetched: ...

    def refill(self, doc_key: str, gen_key: str, gen: str, raw: str, timeout: float) -> None: ...

    def bump(self, gen_key: str) -> str: ...

    async def afetch(self, doc_key: str, gen_key: str, known_gen: str) -> Fetched: ...

    async def arefill(
        self, doc_key: str, gen_key: str, gen: str, raw: str, timeout: float
    ) -> None: ...

    async def abump(self, gen_key: str) -> str: ...


@dataclass(frozen=True)
class Fetched:
    """What a store answered: the current generation, and the document unless the caller's
    copy (built at ``known_gen``) is still current."""

    gen: str
    current: bool
    raw: bytes | str | None = None


# One round trip: the generation, and the document only when the caller's copy is stale.
_FETCH_LUA = """
local gen = redis.call('GET', KEYS[2]) or ''
if ARGV[1] ~= '' and gen == ARGV[1] then
  return {1, gen}
end
return {0, gen, redis.call('GET', KEYS[1])}
"""
# Write the document only if no publication happened since the caller read the generation.
_REFILL_LUA = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
_FETCH_SHA = hashlib.sha1(_FETCH_LUA.encode()).hexdigest()  # the id Redis gives the script
_REFILL_SHA = hashlib.sha1(_REFILL_LUA.encode()).hexdigest()  # the id Redis gives the script


def _gen_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _fetched(reply: Any) -> Fetched:
    if int(reply[0]) == 1:
        return Fetched(_gen_text(reply[1]), True)
    return Fetched(_gen_text(reply[1]), False, reply[2] if len(reply) > 2 else None)


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

    def fetch(self, doc_key: str, gen_key: str, known_gen: str) -> Fetched:
        return _fetched(self._script(_FETCH_SHA, _FETCH_LUA, doc_key, gen_key, known_gen))

    def refill(self, doc_key: str, gen_key: str, gen: str, raw: str, timeout: float) -> None:
        ttl = max(1, math.ceil(timeout))
        self._script(_REFILL_SHA, _REFILL_LUA, doc_key, gen_key, gen, raw, ttl)

    def bump(self, gen_key: str) -> str:
        return str(get_redis().incr(gen_key))

    async def afetch(self, doc_key: str, gen_key: str, known_gen: str) -> Fetched:
        reply = await self._ascript(_FETCH_SHA, _FETCH_LUA, doc_key, gen_key, known_gen)
        return _fetched(reply)

    async def arefill(self, doc_key: str, gen_key: str, gen: str, raw: str, timeout: float) -> None:
        ttl = max(1, math.ceil(timeout))
        await self._ascript(_REFILL_SHA, _REFILL_LUA, doc_key, gen_key, gen, raw, ttl)

    async def abump(self, gen_key: str) -> str:
        return str(await get_async_redis().incr(gen_key))


def _noscript_error() -> type[Exception]:
    from redis.exceptions import NoScriptError

    return NoScriptError


class DjangoCacheStore:
    """A Django cache alias, for deployments without Redis: one ``get_many`` per read.

    Django's cache API has no compare-and-set: the generation is read again right before a
    refill, which narrows the window a slow reader has to store an old document to the time
    between two cache calls; the document timeout bounds what it could cost.
    """

    name = "django-cache"

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def errors(self) -> tuple[type[BaseException], ...]:
        # Cache backends raise their client's own errors; none of them may break a page.
        return (Exception,)

    def fetch(self, doc_key: str, gen_key: str, known_gen: str) -> Fetched:
        values = caches[self.alias].get_many([doc_key, gen_key])
        gen = _gen_text(values.get(gen_key))
        if known_gen and gen == known_gen:
            return Fetched(gen, True)
        return Fetched(gen, False, values.get(doc_key))

    def refill(self, doc_key: str, gen_key: str, gen: str, raw: str, timeout: float) -> None:
        cache = caches[self.alias]
        if _gen_text(cache.get(gen_key)) == gen:
            cache.set(doc_key, raw, timeout)

    def bump(self, gen_key: str) -> str:
        cache = caches[self.alias]
        try:
            return str(cache.incr(gen_key))
        except ValueError:
            if cache.add(gen_key, 1, timeout=None):
                return "1"
            return str(cache.incr(gen_key))

    async def afetch(self, doc_key: str, gen_key: str, known_gen: str) -> Fetched:
        values = await caches[self.alias].aget_many([doc_key, gen_key])
        gen = _gen_text(values.get(gen_key))
        if known_gen and gen == known_gen:
            return Fetched(gen, True)
        return Fetched(gen, False, values.get(doc_key))

    async def arefill(self, doc_key: str, gen_key: str, gen: str, raw: str, timeout: float) -> None:
        cache = caches[self.alias]
        if _gen_text(await cache.aget(gen_key)) == gen:
            await cache.aset(doc_key, raw, timeout)

    async def abump(self, gen_key: str) -> str:
        cache = caches[self.alias]
        try:
            return str(await cache.aincr(gen_key))
        except ValueError:
            if await cache.aadd(gen_key, 1, timeout=None):
                return "1"
            return str(await cache.aincr(gen_key))


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


def _encode_doc(source: CachedSource[Any], gen: str, payload: Any) -> str:
    doc = {"format": FORMAT, "model": source.model._meta.label_lower, "gen": gen, "data": payload}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _decode_doc(source: CachedSource[Any], raw: bytes | str, gen: str, alias: str) -> Any:
    """The template stored in ``raw``, or ``_MISSING`` if it is stale, foreign or damaged."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return _MISSING
    if (
        not isinstance(doc, dict)
        or doc.get("format") != FORMAT
        or doc.get("gen") != gen
        or doc.get("model") != source.model._meta.label_lower
        or "data" not in doc
    ):
        return _MISSING
    try:
        return source.from_payload(alias, doc["data"])
    except (KeyError, TypeError, ValueError, AttributeError):
        # Written by a version of the model this process does not know: rebuild it.
        return _MISSING


# -- read path -----------------------------------------------------------------------------


def current_language() -> str:
    """The active language code, lower-cased (``LANGUAGE_CODE`` when none is active)."""
    return (translation.get_language() or settings.LANGUAGE_CODE).lower()


def resolve_alias(model: type[Model], using: str | None) -> str:
    """The database a cached object is read from: ``using``, or the model's write database.

    The write database, not a replica: a refill from a lagging replica would store an old
    value under a current generation.
    """
    if using:
        return using
    if not router.routers:  # the common case, without the routing machinery's cost
        return DEFAULT_DB_ALIAS
    return router.db_for_write(model)


def read(source: CachedSource[T], *, using: str | None = None, part: str | None = None) -> T:
    """Return the object of ``source`` for the active language (see the module docstring)."""
    model = source.model
    alias = resolve_alias(model, using)
    lkey = (source.kind, alias, current_language() if source.per_language else "any", part)
    memo = _memo.get()
    if memo is not None:
        seen = memo.get(model)
        if seen is not None:
            value = seen.get(lkey, _MISSING)
            if value is not _MISSING:
                return value  # type: ignore[no-any-return]
    entry = _local.get(model, _NO_ENTRIES).get(lkey)
    if entry is not None and entry[0] > time.monotonic():
        template = entry[2]
    else:
        epoch = _epochs.get(model, 0)
        gen, template = _fetch(source, alias, lkey[2], part, entry)
        _keep_local(model, lkey, epoch, gen, template)
    value = source.materialize(template)
    if memo is not None:
        memo.setdefault(model, {})[lkey] = value
    return value


async def aread(source: CachedSource[T], *, using: str | None = None, part: str | None = None) -> T:
    """The asyncio twin of :func:`read`: the asyncio Redis client, the same layers."""
    model = source.model
    alias = resolve_alias(model, using)
    lkey = (source.kind, alias, current_language() if source.per_language else "any", part)
    memo = _memo.get()
    if memo is not None:
        seen = memo.get(model)
        if seen is not None:
            value = seen.get(lkey, _MISSING)
            if value is not _MISSING:
                return value  # type: ignore[no-any-return]
    entry = _local.get(model, _NO_ENTRIES).get(lkey)
    if entry is not None and entry[0] > time.monotonic():
        template = entry[2]
    else:
        epoch = _epochs.get(model, 0)
        gen, template = await _afetch(source, alias, lkey[2], part, entry)
        _keep_local(model, lkey, epoch, gen, template)
    value = source.materialize(template)
    if memo is not None:
        memo.setdefault(model, {})[lkey] = value
    return value


#: A process copy: (valid until, generation it was built at or None, template).
_Entry = tuple[float, str | None, Any]
_NO_ENTRIES: dict[tuple[Any, ...], _Entry] = {}

#: Bound on the process copies of one model (page SEO may be asked for many page keys).
MAX_LOCAL_ENTRIES = 1024


def _keep_local(
    model: type[Model], lkey: tuple[Any, ...], epoch: int, gen: str | None, template: Any
) -> None:
    # Kept even with a TTL of 0: an expired copy still spares the document's transfer and
    # decoding when the store says its generation is current.
    expires = time.monotonic() + keel_settings.SITE_SETTINGS_LOCAL_TTL
    with _state_lock:
        # A publish in this process since the read started: what was read may be older.
        if _epochs.get(model, 0) != epoch:
            return
        entries = _local.setdefault(model, {})
        if len(entries) >= MAX_LOCAL_ENTRIES:
            entries.clear()
        entries[lkey] = (expires, gen, template)


def _fetch(
    source: CachedSource[Any], alias: str, language: str, part: str | None, entry: _Entry | None
) -> tuple[str | None, Any]:
    """``(generation or None, template)`` from the store, else from the database."""
    store = get_store()
    if time.monotonic() < _down_until:
        return None, source.build(alias, language, part)[1]
    gen_key = source.gen_key()
    doc_key = source.doc_key(alias, language, part)
    known = entry[1] if entry is not None and entry[1] is not None else ""
    try:
        fetched = store.fetch(doc_key, gen_key, known)
        if _pending:
            bumped = _retry_pending(store)
            if gen_key in bumped:
                fetched = Fetched(bumped[gen_key], False)
    except store.errors() as exc:
        _store_failed(store, "read", exc)
        return None, source.build(alias, language, part)[1]
    if fetched.current and entry is not None:
        return fetched.gen, entry[2]
    if fetched.raw is not None:
        template = _decode_doc(source, fetched.raw, fetched.gen, alias)
        if template is not _MISSING:
            return fetched.gen, template
    payload, template = source.build(alias, language, part)
    try:
        raw = _encode_doc(source, fetched.gen, payload)
        store.refill(doc_key, gen_key, fetched.gen, raw, _timeout())
    except store.errors() as exc:
        _store_failed(store, "refill", exc)
    return fetched.gen, template


async def _afetch(
    source: CachedSource[Any], alias: str, language: str, part: str | None, entry: _Entry | None
) -> tuple[str | None, Any]:
    store = get_store()
    build = sync_to_async(source.build)
    if time.monotonic() < _down_until:
        return None, (await build(alias, language, part))[1]
    gen_key = source.gen_key()
    doc_key = source.doc_key(alias, language, part)
    known = entry[1] if entry is not None and entry[1] is not None else ""
    try:
        fetched = await store.afetch(doc_key, gen_key, known)
        if _pending:
            bumped = await _aretry_pending(store)
            if gen_key in bumped:
                fetched = Fetched(bumped[gen_key], False)
    except store.errors() as exc:
        _store_failed(store, "read", exc)
        return None, (await build(alias, language, part))[1]
    if fetched.current and entry is not None:
        return fetched.gen, entry[2]
    if fetched.raw is not None:
        template = _decode_doc(source, fetched.raw, fetched.gen, alias)
        if template is not _MISSING:
            return fetched.gen, template
    payload, template = await build(alias, language, part)
    try:
        raw = _encode_doc(source, fetched.gen, payload)
        await store.arefill(doc_key, gen_key, fetched.gen, raw, _timeout())
    except store.errors() as exc:
        _store_failed(store, "refill", exc)
    return fetched.gen, template


def _timeout() -> float:
    return keel_settings.SITE_SETTINGS_CACHE_TIMEOUT


def _retry_pending(store: Store) -> dict[str, str]:
    bumped: dict[str, str] = {}
    for gen_key in list(_pending):
        bumped[gen_key] = store.bump(gen_key)
        _pending.discard(gen_key)
    return bumped


async def _aretry_pending(store: Store) -> dict[str, str]:
    bumped: dict[str, str] = {}
    for gen_key in list(_pending):
        bumped[gen_key] = await store.abump(gen_key)
        _pending.discard(gen_key)
    return bumped


# -- request memo and process copies -------------------------------------------------------


@contextmanager
def request_scope() -> Iterator[None]:
    """Open a request memo: inside it, each cached object is read at most once."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def clear_local_copies(model: type[Model] | None = None) -> None:
    """Forget this process's copies (and the current request memo) of ``model`` or of all."""
    with _state_lock:
        models = list(_local) if model is None else [model._meta.concrete_model or model]
        for m in models:
            _epochs[m] = _epochs.get(m, 0) + 1
            _local.pop(m, None)
    memo = _memo.get()
    if memo is not None:
        if model is None:
            memo.clear()
        else:
            memo.pop(model._meta.concrete_model or model, None)


def reset_process_state() -> None:
    """Forget every process copy, pending increment and store back-off (tests, ``KEEL``
    changes)."""
    global _down_until
    clear_local_copies()
    _pending.clear()
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
# callbacks of a rolled-back transaction, the entry then disappears and the next write
# schedules a new publication.
_scheduled: weakref.WeakValueDictionary[tuple[int, type[Model]], _Publication] = (
    weakref.WeakValueDictionary()
)


def schedule_publish(sources: tuple[CachedSource[Any], ...], using: str) -> None:
    """Publish ``sources`` once when the current transaction of ``using`` commits.

    Outside a transaction it publishes at once. Several writes in one transaction publish
    once. A rolled-back transaction publishes nothing.
    """
    connection = transaction.get_connection(using)
    model = sources[0].model
    key = (id(connection), model)
    if connection.in_atomic_block:
        pending = _scheduled.get(key)
        if pending is not None and not pending.started:
            return
    publication = _Publication(sources, using)
    if connection.in_atomic_block:
        _scheduled[key] = publication
    transaction.on_commit(publication, using=using, robust=True)


def publish_now(sources: tuple[CachedSource[Any], ...], alias: str) -> None:
    """Make every cached object of the sources' model stale, then rebuild what should be.

    Never raises for a store failure: it is logged and the increment retried later.
    """
    model = sources[0].model
    clear_local_copies(model)
    store = get_store()
    gen_key = sources[0].gen_key()
    try:
        gen = store.bump(gen_key)
    except store.errors() as exc:
        _pending.add(gen_key)
        _store_failed(store, "publish", exc)
        return
    _pending.discard(gen_key)
    for source in sources:
        language = current_language() if source.per_language else "any"
        if not source.rebuild_on_publish:
            continue
        built = source.build_for_publish(alias, language)
        if built is None:
            continue
        try:
            store.refill(
                source.doc_key(alias, language, None),
                gen_key,
                gen,
                _encode_doc(source, gen, built[0]),
                _timeout(),
            )
        except store.errors() as exc:
            _store_failed(store, "publish", exc)
    # A read of this process that started before the increment may have kept an old copy.
    clear_local_copies(model)


def pending_publications() -> frozenset[str]:
    """Generation keys whose increment failed and waits for the store to come back."""
    return frozenset(_pending)
