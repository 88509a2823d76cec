"""The one place keel builds Redis clients and names Redis keys.

Clients are built lazily from ``KEEL["REDIS_URL"]`` and ``KEEL["REDIS_OPTIONS"]`` and reused:
one connection pool per process for the sync client, one per event loop for the asyncio client
(an asyncio connection cannot cross event loops). They are dropped when ``KEEL`` changes, so
``override_settings(KEEL=...)`` points keel at another server.

Three topologies, picked by the URL (see [`topology`][keel.redis.topology]):

- one server: ``redis://``, ``rediss://``, ``unix://``;
- Sentinel: ``redis+sentinel://[user:password@]host:port,host:port/service_name[/db]``: the
  client asks the Sentinels for the master of ``service_name`` and asks again after a
  failover (``rediss+sentinel://`` for TLS to the master);
- Cluster: ``redis+cluster://[user:password@]host:port,host:port`` or a ``redis://`` URL with
  ``REDIS_OPTIONS["cluster"] = True``: a ``RedisCluster`` client (database 0 only).

Keys touched by one command (a Lua script, ``MGET``) must share a Cluster hash slot:
``make_key(..., tag=...)`` puts the tag in braces so that they do.

redis-py is an optional dependency (``django-keel[redis]``); it is imported on first use only.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from keel.conf import keel_settings

if TYPE_CHECKING:
    from types import ModuleType

    import redis as redis_py
    import redis.asyncio as redis_asyncio

__all__ = [
    "RedisHealth",
    "RedisTopology",
    "get_async_redis",
    "get_redis",
    "health_check",
    "is_configured",
    "key_slot",
    "make_key",
    "redis_errors",
    "topology",
]

logger = logging.getLogger("keel.redis")

#: Defaults under ``KEEL["REDIS_OPTIONS"]``: a dead server must cost a request about a
#: second, not the operating system's TCP timeout.
DEFAULT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 1.0,
    "socket_timeout": 1.0,
    "health_check_interval": 30,
}

#: Keys of ``KEEL["REDIS_OPTIONS"]`` that keel reads itself instead of passing to redis-py.
KEEL_OPTIONS = frozenset({"cluster", "sentinel_kwargs"})

_SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
_CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
_DEFAULT_PORTS = {"sentinel": 26379, "cluster": 6379}

_lock = threading.Lock()
# Typed loosely: a Redis, a Sentinel-managed Redis or a RedisCluster, which share the
# command API keel uses but no base class.
_sync_client: Any = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
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


@dataclass(frozen=True)
class RedisTopology:
    """What ``KEEL["REDIS_URL"]`` and ``KEEL["REDIS_OPTIONS"]`` describe.

    ``kind`` is ``"single"``, ``"sentinel"`` or ``"cluster"``; ``nodes`` the ``(host, port)``
    of the Sentinels or of the Cluster's startup nodes (empty for one server, whose address
    stays in ``url``); ``service_name`` the Sentinel service; ``connection`` the keyword
    arguments of every connection to a data node (``db``, credentials, TLS and the options).
    """

    kind: Literal["single", "sentinel", "cluster"]
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str | None = None
    connection: dict[str, Any] = field(default_factory=dict)
    sentinel_kwargs: dict[str, Any] | None = None


def _nodes(netloc: str, default_port: int, url: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in netloc.split(","):
        item = item.strip()
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise ImproperlyConfigured(f"KEEL['REDIS_URL'] names a node without a host: {url!r}.")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ImproperlyConfigured(
                f"KEEL['REDIS_URL'] names a node with a bad port ({item!r}): {url!r}."
            ) from None
        nodes.append((host, port))
    return tuple(nodes)


def _userinfo(netloc: str) -> tuple[dict[str, Any], str]:
    credentials: dict[str, Any] = {}
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return credentials, netloc
    username, colon, password = userinfo.partition(":")
    if colon:
        credentials["password"] = unquote(password)
        if username:
            credentials["username"] = unquote(username)
    elif username:
        # redis://secret@host means a password, as redis-py reads it.
        credentials["password"] = unquote(username)
    return credentials, hosts


def _db(text: str, url: str) -> int:
    try:
        db = int(text)
    except ValueError:
        raise ImproperlyConfigured(
            f"KEEL['REDIS_URL'] names database {text!r}, not a number: {url!r}."
        ) from None
    if db < 0:
        raise ImproperlyConfigured(f"KEEL['REDIS_URL'] names a negative database: {url!r}.")
    return db


def topology() -> RedisTopology:
    """Parse the settings into a [`RedisTopology`][keel.redis.RedisTopology].

    Options are ``DEFAULT_OPTIONS`` overridden by ``KEEL["REDIS_OPTIONS"]``, without the keys
    keel reads itself (``KEEL_OPTIONS``).

    Raises:
        ImproperlyConfigured: ``REDIS_URL`` is unset or malformed, or ``REDIS_OPTIONS``
            holds a ``sentinel_kwargs`` that is not a dict.
    """
    url = keel_settings.REDIS_URL
    if url is None:
        raise ImproperlyConfigured(
            "Set KEEL['REDIS_URL'] to a redis:// URL to use a Redis store, got None."
        )
    user_options = dict(keel_settings.REDIS_OPTIONS)
    cluster_option = bool(user_options.get("cluster", False))
    sentinel_kwargs = user_options.get("sentinel_kwargs")
    if sentinel_kwargs is not None and not isinstance(sentinel_kwargs, dict):
        raise ImproperlyConfigured(
            "KEEL['REDIS_OPTIONS']['sentinel_kwargs'] must be a dict of connection options, "
            f"got {type(sentinel_kwargs).__name__}."
        )
    options = {**DEFAULT_OPTIONS}
    options.update((k, v) for k, v in user_options.items() if k not in KEEL_OPTIONS)
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in _SENTINEL_SCHEMES:
        credentials, hosts = _userinfo(parts.netloc)
        path = [p for p in parts.path.split("/") if p]
        if not path or len(path) > 2:
            raise ImproperlyConfigured(
                "A Sentinel KEEL['REDIS_URL'] is redis+sentinel://host:port,host:port/"
                f"service_name[/db], got {url!r}."
            )
        connection = {**options, **credentials, "db": _db(path[1], url) if len(path) > 1 else 0}
        if _SENTINEL_SCHEMES[scheme]:
            connection["ssl"] = True
        return RedisTopology(
            kind="sentinel",
            url=url,
            nodes=_nodes(hosts, _DEFAULT_PORTS["sentinel"], url),
            service_name=unquote(path[0]),
            connection=connection,
            sentinel_kwargs=sentinel_kwargs,
        )
    if scheme in _CLUSTER_SCHEMES or cluster_option:
        if scheme == "unix":
            raise ImproperlyConfigured("A Redis Cluster is reached over TCP, not unix://.")
        credentials, hosts = _userinfo(parts.netloc)
        path = [p for p in parts.path.split("/") if p]
        if path and (len(path) > 1 or _db(path[0], url) != 0):
            raise ImproperlyConfigured(
                f"A Redis Cluster has database 0 only; KEEL['REDIS_URL'] is {url!r}."
            )
        connection = {**options, **credentials}
        if _CLUSTER_SCHEMES.get(scheme) or scheme == "rediss":
            connection["ssl"] = True
        return RedisTopology(
            kind="cluster",
            url=url,
            nodes=_nodes(hosts, _DEFAULT_PORTS["cluster"], url),
            connection=connection,
        )
    return RedisTopology(kind="single", url=url, connection=options)


def _url_and_options() -> tuple[str, dict[str, Any]]:
    described = topology()
    return described.url, described.connection


def _build(described: RedisTopology, *, asynchronous: bool) -> Any:
    redis = _import_redis()
    try:
        if described.kind == "single":
            module = redis.asyncio if asynchronous else redis
            return module.Redis.from_url(described.url, **described.connection)
        if described.kind == "sentinel":
            sentinel_module = importlib.import_module(
                "redis.asyncio.sentinel" if asynchronous else "redis.sentinel"
            )
            sentinel = sentinel_module.Sentinel(
                list(described.nodes),
                sentinel_kwargs=described.sentinel_kwargs,
                **described.connection,
            )
            return sentinel.master_for(described.service_name)
        if asynchronous:
            from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
            from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

            return AsyncRedisCluster(
                startup_nodes=[AsyncClusterNode(h, p) for h, p in described.nodes],
                **described.connection,
            )
        cluster = importlib.import_module("redis.cluster")
        return cluster.RedisCluster(
            startup_nodes=[cluster.ClusterNode(h, p) for h, p in described.nodes],
            **described.connection,
        )
    except TypeError as exc:
        raise ImproperlyConfigured(
            f"KEEL['REDIS_OPTIONS'] holds an option the {described.kind} client refuses: {exc}"
        ) from exc


def get_redis() -> redis_py.Redis:
    """Return the process-wide sync client (one connection pool, thread-safe).

    For a Cluster it is a ``redis.cluster.RedisCluster`` (one pool per node), which answers
    the same commands; for Sentinel a client whose pool follows the current master.
    """
    global _sync_client
    client = _sync_client
    if client is not None:
        return client  # type: ignore[no-any-return]
    with _lock:
        if _sync_client is None:
            _sync_client = _build(topology(), asynchronous=False)
        return _sync_client  # type: ignore[no-any-return]


def get_async_redis() -> redis_asyncio.Redis:
    """Return the asyncio client of the running event loop (one pool per loop)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _build(topology(), asynchronous=True)
        _async_clients[loop] = client
    return client  # type: ignore[no-any-return]


def reset_clients() -> None:
    """Drop every client; the next call builds new ones from the current settings."""
    global _sync_client
    with _lock:
        client, _sync_client = _sync_client, None
        _async_clients.clear()
    if client is None:
        return
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pool.disconnect()
    else:  # RedisCluster: one pool per node
        client.close()


def reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: rebuild clients when ``KEEL`` changes."""
    if setting == "KEEL":
        reset_clients()


def make_key(*parts: str, tag: str | None = None) -> str:
    """Return the Redis key for ``parts`` under ``KEEL["KEY_PREFIX"]``: ``prefix:a:b``.

    With ``tag``, the key is ``prefix:{tag}:a:b``: Redis Cluster hashes only what is between
    the braces, so every key made with the same tag (and prefix) lives in one hash slot and
    can be used together in one command, Lua script or ``MULTI``. ``tag`` must be non-empty
    and hold no braces.
    """
    if tag is None:
        return ":".join((keel_settings.KEY_PREFIX, *parts))
    if not isinstance(tag, str) or not tag or "{" in tag or "}" in tag:
        raise ValueError(f"A hash tag is a non-empty string without braces, got {tag!r}.")
    return ":".join((keel_settings.KEY_PREFIX, "{" + tag + "}", *parts))


def key_slot(key: str | bytes) -> int:
    """The Redis Cluster hash slot of ``key`` (0-16383), as the servers compute it."""
    from redis.crc import key_slot as crc_key_slot

    return int(crc_key_slot(key.encode() if isinstance(key, str) else key))


def redis_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean "Redis did not answer", for ``except`` clauses.

    They include redis-py's Cluster errors (a slot without a live master) and Sentinel's
    ``MasterNotFoundError`` (a ``ConnectionError``).
    """
    redis = _import_redis()
    return (redis.RedisError, redis.exceptions.RedisClusterException, OSError)


def log_redis_error(operation: str, exc: BaseException, *, store: str = "Redis") -> None:
    """Log a failure of ``store`` as a warning, at most once per ``REDIS_ERROR_LOG_INTERVAL``."""
    now = time.monotonic()
    key = f"{store}:{operation}"
    if now - _last_logged.get(key, -math.inf) < keel_settings.REDIS_ERROR_LOG_INTERVAL:
        return
    _last_logged[key] = now
    logger.warning("%s unavailable during %s (%s: %s)", store, operation, type(exc).__name__, exc)


@dataclass(frozen=True)
class RedisHealth:
    """Outcome of [`health_check`][keel.redis.health_check]."""

    configured: bool
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


def health_check() -> RedisHealth:
    """Ping the configured Redis server, for a health endpoint. Never raises.

    Returns:
        A [`RedisHealth`][keel.redis.RedisHealth]: ``configured`` is ``False`` without
        ``KEEL["REDIS_URL"]``; ``ok`` is ``True`` with ``latency_ms`` (milliseconds) when the
        server answered; otherwise ``error`` says why, as ``"ExceptionName: message"``: an
        unreachable server, a refused password, a URL or option redis-py rejects, redis-py
        not installed.
    """
    # A health check reports: whatever went wrong is its answer, never an exception.
    try:
        configured = is_configured()
    except Exception as exc:  # KEEL itself is malformed
        return RedisHealth(configured=False, ok=False, error=f"{type(exc).__name__}: {exc}")
    if not configured:
        return RedisHealth(configured=False, ok=False, error="KEEL['REDIS_URL'] is not set")
    started = time.perf_counter()
    try:
        get_redis().ping()
    except Exception as exc:
        return RedisHealth(configured=True, ok=False, error=f"{type(exc).__name__}: {exc}")
    return RedisHealth(configured=True, ok=True, latency_ms=(time.perf_counter() - started) * 1000)
