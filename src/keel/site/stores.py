"""The shared stores of keel's cached state: Redis (one Lua script per operation) or, without
Redis, a Django cache; and the short back-off after a store failure."""

from __future__ import annotations

import hashlib
import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.db import BaseDatabaseCache
from django.db import router, transaction

from keel import clock
from keel.conf import keel_settings
from keel.redis import get_async_redis, get_redis, is_configured, log_redis_error, redis_errors

__all__ = [
    "DjangoCacheStore",
    "Fetched",
    "RedisStore",
    "Store",
    "doc_timeout",
    "get_store",
    "reset_backoff",
    "store_failed",
    "store_is_down",
]

#: Seconds reads skip a store that just failed (they go to the database meanwhile).
STORE_RETRY_AFTER = 1.0

_down_until = 0.0


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
