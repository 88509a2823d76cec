"""The shared stores of keel's cached state: Redis (one Lua script per operation) or, without
Redis, a Django cache; and the short back-off after a store failure.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.db import connections, router, transaction

from keel import clock, compat
from keel.compat import BaseDatabaseCache
from keel.conf import keel_settings
from keel.redis import get_async_redis, get_redis, is_configured, log_redis_error, redis_errors

#: Seconds reads skip a store that just failed (they go to the database meanwhile).
STORE_RETRY_AFTER = 1.0

_down_until = 0.0


class Write(NamedTuple):
    """A write to a store: set its version to ``version`` and, unless ``raw`` is empty, set the
    document ``raw`` (built at that version) under ``doc_key`` for ``timeout`` seconds."""

    doc_key: str
    gen_key: str
    version: int
    raw: str
    timeout: float


class Store(Protocol):
    name: str

    def errors(self) -> tuple[type[BaseException], ...]: ...

    def get(self, doc_key: str, gen_key: str, known: int | None) -> Fetched: ...

    def set(self, write: Write, *, force: bool = False) -> None:
        """Apply ``write``, unless the store holds a higher version and ``force`` is false."""

    async def aget(self, doc_key: str, gen_key: str, known: int | None) -> Fetched: ...

    async def aset(self, write: Write, *, force: bool = False) -> None: ...


@dataclass(frozen=True)
class Fetched:
    """What a store answered: its version (``None``: missing, lost), and the document unless
    the caller's copy (built at ``known``) is still current."""

    gen: int | None
    current: bool
    raw: bytes | str | None = None


# One round trip: the version, and the document only when the caller's copy is stale.
_GET_LUA = """
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
_SET_LUA = """
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
_GET_SHA = hashlib.sha1(_GET_LUA.encode()).hexdigest()  # the id Redis gives the script
_SET_SHA = hashlib.sha1(_SET_LUA.encode()).hexdigest()  # the id Redis gives the script


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

    def get(self, doc_key: str, gen_key: str, known: int | None) -> Fetched:
        reply = self._script(_GET_SHA, _GET_LUA, doc_key, gen_key, _known_text(known))
        return _fetched(reply)

    def set(self, write: Write, *, force: bool = False) -> None:
        self._script(_SET_SHA, _SET_LUA, *_set_args(write, force))

    async def aget(self, doc_key: str, gen_key: str, known: int | None) -> Fetched:
        reply = await self._ascript(_GET_SHA, _GET_LUA, doc_key, gen_key, _known_text(known))
        return _fetched(reply)

    async def aset(self, write: Write, *, force: bool = False) -> None:
        await self._ascript(_SET_SHA, _SET_LUA, *_set_args(write, force))


def _set_args(write: Write, force: bool) -> tuple[Any, ...]:
    ttl = max(1, math.ceil(write.timeout))
    return (write.doc_key, write.gen_key, write.version, write.raw, ttl, "1" if force else "0")


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
        if not compat.in_atomic_block(connections[using]):
            return nullcontext()
        return transaction.atomic(using=using)

    def get(self, doc_key: str, gen_key: str, known: int | None) -> Fetched:
        with self._guard():
            values = caches[self.alias].get_many([doc_key, gen_key])
        gen = _version(values.get(gen_key))
        if known is not None and gen == known:
            return Fetched(gen, True)
        return Fetched(gen, False, values.get(doc_key))

    def set(self, write: Write, *, force: bool = False) -> None:
        cache = caches[self.alias]
        with self._guard():
            stored = _version(cache.get(write.gen_key))
            if stored is not None and stored > write.version and not force:
                return
            if stored != write.version:
                cache.set(write.gen_key, write.version, timeout=None)
            if write.raw:
                cache.set(write.doc_key, write.raw, write.timeout)

    async def aget(self, doc_key: str, gen_key: str, known: int | None) -> Fetched:
        return await sync_to_async(self.get)(doc_key, gen_key, known)

    async def aset(self, write: Write, *, force: bool = False) -> None:
        await sync_to_async(self.set)(write, force=force)


_REDIS_STORE = RedisStore()


def get_store() -> Store:
    """Redis when ``KEEL["REDIS_URL"]`` is set, else ``KEEL["SITE_SETTINGS_CACHE_ALIAS"]``."""
    if is_configured():
        return _REDIS_STORE
    return DjangoCacheStore(keel_settings.SITE_SETTINGS_CACHE_ALIAS)


def store_failed(store: Store, operation: str, exc: BaseException) -> None:
    global _down_until
    _down_until = clock.monotonic() + STORE_RETRY_AFTER
    label = "Redis" if store.name == "redis" else "The Django cache"
    log_redis_error(f"site cache {operation}", exc, store=label)


def store_is_down() -> bool:
    """Whether a store failed less than ``STORE_RETRY_AFTER`` seconds ago."""
    return clock.monotonic() < _down_until


def reset_backoff() -> None:
    global _down_until
    _down_until = 0.0


def doc_timeout() -> float:
    return keel_settings.SITE_SETTINGS_CACHE_TIMEOUT
