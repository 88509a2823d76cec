"""The one place keel builds Redis clients and names Redis keys.

Clients are built lazily from ``KEEL["REDIS_URL"]`` and ``KEEL["REDIS_OPTIONS"]`` and reused:
one connection pool per process for the sync client, one per event loop for the asyncio client
(an asyncio connection cannot cross event loops). They are dropped when ``KEEL`` changes, so
``override_settings(KEEL=...)`` points keel at another server.

redis-py is an optional dependency (``django-keel[redis]``); it is imported on first use only.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from keel.conf import keel_settings

if TYPE_CHECKING:
    from types import ModuleType

    import redis as redis_py
    import redis.asyncio as redis_asyncio

__all__ = [
    "RedisHealth",
    "get_async_redis",
    "get_redis",
    "health_check",
    "is_configured",
    "log_redis_error",
    "make_key",
    "redis_errors",
    "reset_clients",
]

logger = logging.getLogger("keel.redis")

#: Defaults under ``KEEL["REDIS_OPTIONS"]``: a dead server must cost a request about a
#: second, not the operating system's TCP timeout.
DEFAULT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 1.0,
    "socket_timeout": 1.0,
    "health_check_interval": 30,
}

_lock = threading.Lock()
_sync_client: redis_py.Redis | None = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis_asyncio.Redis] = (
    weakref.WeakKeyDictionary()
)
_last_logged: dict[str, float] = {}


def _import_redis() -> ModuleType:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - exercised without the extra only
        raise ImproperlyConfigured(
            "KEEL['REDIS_URL'] is set but redis-py is not installed: "
            "pip install 'django-keel[redis]'."
        ) from exc
    return redis


def is_configured() -> bool:
    """Whether ``KEEL["REDIS_URL"]`` names a Redis server."""
    return keel_settings.REDIS_URL is not None


def _url_and_options() -> tuple[str, dict[str, Any]]:
    url = keel_settings.REDIS_URL
    if url is None:
        raise ImproperlyConfigured(
            "Set KEEL['REDIS_URL'] to a redis:// URL to use a Redis store, got None."
        )
    return url, {**DEFAULT_OPTIONS, **keel_settings.REDIS_OPTIONS}


def get_redis() -> redis_py.Redis:
    """Return the process-wide sync client (one connection pool, thread-safe)."""
    global _sync_client
    client = _sync_client
    if client is not None:
        return client
    with _lock:
        if _sync_client is None:
            url, options = _url_and_options()
            _sync_client = _import_redis().Redis.from_url(url, **options)
        return _sync_client


def get_async_redis() -> redis_asyncio.Redis:
    """Return the asyncio client of the running event loop (one pool per loop)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        _import_redis()
        import redis.asyncio

        url, options = _url_and_options()
        client = redis.asyncio.Redis.from_url(url, **options)
        _async_clients[loop] = client
    return client


def reset_clients() -> None:
    """Drop every client; the next call builds new ones from the current settings."""
    global _sync_client
    with _lock:
        if _sync_client is not None:
            _sync_client.connection_pool.disconnect()
        _sync_client = None
        _async_clients.clear()


def reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: rebuild clients when ``KEEL`` changes."""
    if setting == "KEEL":
        reset_clients()


def make_key(*parts: str) -> str:
    """Return the Redis key for ``parts`` under ``KEEL["KEY_PREFIX"]``: ``prefix:a:b``."""
    return ":".join((keel_settings.KEY_PREFIX, *parts))


def redis_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean "Redis did not answer", for ``except`` clauses."""
    return (_import_redis().RedisError, OSError)


def log_redis_error(operation: str, exc: BaseException) -> None:
    """Log a Redis failure as a warning, at most once per ``REDIS_ERROR_LOG_INTERVAL``."""
    now = time.monotonic()
    if now - _last_logged.get(operation, -math.inf) < keel_settings.REDIS_ERROR_LOG_INTERVAL:
        return
    _last_logged[operation] = now
    logger.warning("Redis unavailable during %s (%s: %s)", operation, type(exc).__name__, exc)


@dataclass(frozen=True)
class RedisHealth:
    """Outcome of :func:`health_check`."""

    configured: bool
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


def health_check() -> RedisHealth:
    """Ping the configured Redis server; never raises for an unreachable server."""
    if not is_configured():
        return RedisHealth(configured=False, ok=False, error="KEEL['REDIS_URL'] is not set")
    started = time.perf_counter()
    try:
        get_redis().ping()
    except redis_errors() as exc:
        return RedisHealth(configured=True, ok=False, error=f"{type(exc).__name__}: {exc}")
    return RedisHealth(configured=True, ok=True, latency_ms=(time.perf_counter() - started) * 1000)
