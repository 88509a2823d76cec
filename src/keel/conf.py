"""keel's settings: one dict setting, ``KEEL``, read at access time.

    KEEL = {"REDIS_URL": "redis://127.0.0.1:6379/0", "KEY_PREFIX": "mysite"}

Every key has a default and a validator beside it ([`SETTINGS`][keel.conf.SETTINGS]). A
wrong value raises ``ImproperlyConfigured`` naming the key and the fix; ``manage.py check``
reports the same problems as ``keel.E0xx`` errors before anything runs. Values are cached
until Django's ``setting_changed`` signal says ``KEEL`` changed, so ``override_settings``
works everywhere.
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, Self, TypeVar, cast, overload
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "keel_settings",
]

REDIS_URL_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)
TOKEN_STORES = ("auto", "redis", "database")


def _redis_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or urlsplit(value).scheme not in REDIS_URL_SCHEMES:
        return (
            "a redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// URL "
            "(or None for no Redis)"
        )
    return None


def _positive_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return "a positive number of seconds"
    if not math.isfinite(value):
        return "a finite positive number of seconds"
    return None


def _non_negative_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return "a number of seconds, 0 or more"
    if not math.isfinite(value):
        return "a finite number of seconds"
    return None


def _positive_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return "a positive integer"
    return None


def _mapping(value: Any) -> str | None:
    return None if isinstance(value, Mapping) else "a dict of keyword arguments"


def _key_prefix(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return "a non-empty string without spaces (or None: derived from the default database)"
    return None


#: The ``OPTIONS`` of a database connection that change which data it sees, per backend (the
#: last part of ``ENGINE``): other databases, servers or schemas reached through ``OPTIONS``.
IDENTITY_OPTIONS: dict[str, tuple[str, ...]] = {
    # libpq: a service file entry names a server and a database; ``dbname``, ``host``,
    # ``hostaddr`` and ``port`` apply when NAME, HOST and PORT do not set them.
    "postgresql": ("service", "dbname", "host", "hostaddr", "port", "assume_role"),
    # mysqlclient: OPTIONS override NAME, HOST and PORT; an option file names them too, and an
    # init command may switch databases (``USE other``).
    "mysql": (
        "db",
        "database",
        "host",
        "port",
        "unix_socket",
        "read_default_file",
        "read_default_group",
        "init_command",
    ),
    # An init command may attach another database file.
    "sqlite3": ("init_command",),
}
IDENTITY_OPTIONS["postgis"] = IDENTITY_OPTIONS["postgresql"]
IDENTITY_OPTIONS["spatialite"] = IDENTITY_OPTIONS["sqlite3"]

#: PostgreSQL run-time settings in ``OPTIONS["options"]`` (``-c name=value``) that change
#: which tables a connection sees: the schemas, and the role whose ``"$user"`` schema comes
#: first in the default ``search_path``.
IDENTITY_PG_SETTINGS = ("search_path", "role", "session_authorization")


def _pg_identity_settings(options: str) -> list[str]:
    """``name=value`` of the [`IDENTITY_PG_SETTINGS`][keel.conf.IDENTITY_PG_SETTINGS] in a
    libpq ``options`` string (``-c name=value``, ``-cname=value`` or ``--name=value``), in
    order."""
    try:
        tokens = shlex.split(options)
    except ValueError:  # unbalanced quotes: keep it whole rather than guess
        return [options]
    found: list[str] = []
    for index, token in enumerate(tokens):
        if token == "-c":
            setting = tokens[index + 1] if index + 1 < len(tokens) else ""
        elif token.startswith(("--", "-c")):
            setting = token[2:]
        else:
            continue
        name, _, value = setting.partition("=")
        name = name.strip().lower().replace("-", "_")
        if name in IDENTITY_PG_SETTINGS:
            found.append(f"{name}={value.strip()}")
    return found


def database_identity() -> str:
    """``ENGINE|HOST|PORT|NAME`` of the default database, followed by the ``OPTIONS`` that
    change which data its connections see ([`IDENTITY_OPTIONS`][keel.conf.IDENTITY_OPTIONS],
    and the schema and role settings of PostgreSQL's ``options``): what tells projects apart.

    Other ``OPTIONS`` (timeouts, TLS, pooling, isolation level) are left out, so that every
    process of one project derives the same prefix even when some tune their connections.
    """
    default = settings.DATABASES.get("default", {})
    parts = [str(default.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME")]
    options = default.get("OPTIONS") or {}
    backend = str(default.get("ENGINE") or "").rsplit(".", 1)[-1]
    identity = [
        f"{key}={options[key]}"
        for key in IDENTITY_OPTIONS.get(backend, ())
        if options.get(key) not in (None, "")
    ]
    if IDENTITY_OPTIONS.get(backend) is IDENTITY_OPTIONS["postgresql"] and options.get("options"):
        identity += _pg_identity_settings(str(options["options"]))
    if identity:  # without any, the identity (and the prefix) is the one keel always derived
        parts.append(json.dumps(identity))
    return "|".join(parts)


def derived_key_prefix() -> str:
    """The key prefix used when ``KEEL["KEY_PREFIX"]`` is unset: ``keel-`` and a digest of
    the default database's identity, so two projects sharing one Redis database never share a
    key (and every process of one project agrees on it)."""
    digest = hashlib.sha256(database_identity().encode()).hexdigest()[:12]
    return f"keel-{digest}"


def _cache_alias(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "the alias of an entry of CACHES"


def _token_store(value: Any) -> str | None:
    return None if value in TOKEN_STORES else "one of " + ", ".join(map(repr, TOKEN_STORES))


@dataclass(frozen=True)
class Setting:
    """One key of ``KEEL``: its default, what it means, and how a value is checked."""

    name: str
    default: Any
    doc: str
    validate: Callable[[Any], str | None]
    #: The system check id reporting an invalid value.
    check_id: str


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "REDIS_URL",
            None,
            "Redis used by the site-settings cache and the token store: one server, "
            "`redis+sentinel://host:port,host:port/service/db` (Sentinel) or "
            "`redis+cluster://host:port,host:port` (Cluster). "
            "`None`: keel runs on the database and Django's cache alone.",
            _redis_url,
            "keel.E002",
        ),
        Setting(
            "REDIS_OPTIONS",
            {},
            "Keyword arguments for the redis-py client (timeouts, `max_connections`, ...), "
            "merged over keel's defaults (1 s connect and socket timeouts); "
            "`cluster: True` makes a redis:// URL a Cluster, `sentinel_kwargs` configures the "
            "connections to Sentinels.",
            _mapping,
            "keel.E004",
        ),
        Setting(
            "KEY_PREFIX",
            None,
            "Prefix of every Redis and cache key keel writes. `None`: `keel-` and a digest of "
            "the default database's engine, host, port and name and of the `OPTIONS` that "
            "change which data it sees (schemas, services, option files: see Project state, "
            "Key prefix), so projects sharing one Redis database never share keys.",
            _key_prefix,
            "keel.E004",
        ),
        Setting(
            "REDIS_ERROR_LOG_INTERVAL",
            60,
            "Seconds between two warnings logged for the same Redis failure.",
            _positive_number,
            "keel.E003",
        ),
        Setting(
            "SITE_SETTINGS_LOCAL_TTL",
            5,
            "Seconds a process keeps its own copy of a singleton before asking the shared "
            "store again; `0` asks on every request.",
            _non_negative_number,
            "keel.E003",
        ),
        Setting(
            "SITE_SETTINGS_CACHE_ALIAS",
            "default",
            "Django cache used as the shared store when `REDIS_URL` is `None`.",
            _cache_alias,
            "keel.E004",
        ),
        Setting(
            "SITE_SETTINGS_CACHE_TIMEOUT",
            86400,
            "Seconds a published document lives in the shared store.",
            _positive_number,
            "keel.E003",
        ),
        Setting(
            "SITE_SETTINGS_VERIFY_INTERVAL",
            5,
            "Seconds between two reads, by one process, of the versions the database holds of "
            "the cached models: the longest a process serves a value whose publication failed "
            "or that the shared store lost.",
            _positive_number,
            "keel.E003",
        ),
        Setting(
            "TOKEN_STORE",
            "auto",
            "Where action tokens live: `'redis'`, `'database'`, or `'auto'` (Redis when "
            "`REDIS_URL` is set, else the database).",
            _token_store,
            "keel.E004",
        ),
        Setting(
            "TOKEN_DEFAULT_TTL",
            86400,
            "Lifetime in seconds of a token created without an explicit TTL.",
            _positive_number,
            "keel.E003",
        ),
        Setting(
            "TOKEN_MAX_TTL",
            30 * 86400,
            "Longest lifetime in seconds a token may be given.",
            _positive_number,
            "keel.E003",
        ),
        Setting(
            "TOKEN_MAX_PAYLOAD_BYTES",
            16384,
            "Largest JSON payload, in bytes, a token may carry.",
            _positive_int,
            "keel.E003",
        ),
        Setting(
            "FIXTURE_BATCH_SIZE",
            1000,
            "Rows read and written per statement by the fixture upsert engine.",
            _positive_int,
            "keel.E003",
        ),
        Setting(
            "ENCRYPTION_KEYS",
            [],
            "Fernet keys (url-safe base64 of 32 bytes) of keel's encrypted fields, newest first: "
            "the first encrypts, all decrypt. Empty: keys derived from `SECRET_KEY` and "
            "`SECRET_KEY_FALLBACKS`.",
            lambda value: (
                None
                if isinstance(value, list | tuple)
                and all(isinstance(k, str) and len(k) == 44 for k in value)
                else "a list of Fernet keys (Fernet.generate_key().decode())"
            ),
            "keel.E004",
        ),
        Setting(
            "SITE_SETTINGS_TRACKING",
            True,
            "With `REDIS_URL`, keep process copies coherent through Redis client tracking "
            "(RESP3 `CLIENT TRACKING`, one listener connection per process and master): warm "
            "reads cost no round trip. `False`: process copies are trusted for "
            "`SITE_SETTINGS_LOCAL_TTL` seconds, as without Redis.",
            lambda value: None if isinstance(value, bool) else "True or False",
            "keel.E004",
        ),
        Setting(
            "SITE_SETTINGS_TRACKING_HEARTBEAT",
            1.0,
            "Seconds: the tracking listener pings Redis four times per interval; a server "
            "silent for this long stops zero-round-trip reads until it answers again.",
            _positive_number,
            "keel.E003",
        ),
    )
}


def user_settings() -> Mapping[str, Any]:
    """Return ``settings.KEEL`` (an empty dict when unset) or raise if it is not a dict."""
    raw = getattr(settings, "KEEL", {})
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"Set KEEL to a dict, got {type(raw).__name__}.")
    return raw


def invalid_value_message(name: str, value: Any) -> str | None:
    """Return the fix for ``KEEL[name] = value``, or ``None`` if the value is valid."""
    expected = SETTINGS[name].validate(value)
    if expected is None:
        return None
    return f"Set KEEL[{name!r}] to {expected}, got {value!r}."


T = TypeVar("T")


class _Setting(Generic[T]):
    """A key of ``KEEL``, named like the attribute, read through ``KeelSettings.get`` and typed
    ``T`` (its spec in ``SETTINGS`` validates it)."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, instance: KeelSettings, owner: type[Any]) -> T: ...

    def __get__(self, instance: KeelSettings | None, owner: type[Any]) -> Self | T:
        if instance is None:
            return self
        return cast(T, instance.get(self.name))


class KeelSettings:
    """Typed, validated access to ``settings.KEEL`` with defaults."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        #: Counts [`reload`][keel.conf.KeelSettings.reload]s: a value derived from the settings
        #: and kept elsewhere is current as long as this is what it was when it was read.
        self.version = 0

    def get(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            pass
        value = user_settings().get(name, SETTINGS[name].default)
        message = invalid_value_message(name, value)
        if message is not None:
            raise ImproperlyConfigured(message)
        self._cache[name] = value
        return value

    def reload(self) -> None:
        """Forget cached values; the next access reads ``settings.KEEL`` again."""
        self._cache.clear()
        self.version += 1

    REDIS_URL = _Setting[str | None]()
    REDIS_OPTIONS = _Setting[Mapping[str, Any]]()

    @property
    def KEY_PREFIX(self) -> str:
        value = self.get("KEY_PREFIX")
        if value is None:
            # Not cached: the default database may change (a test database's name).
            return derived_key_prefix()
        return cast(str, value)

    REDIS_ERROR_LOG_INTERVAL = _Setting[float]()
    SITE_SETTINGS_LOCAL_TTL = _Setting[float]()
    SITE_SETTINGS_CACHE_ALIAS = _Setting[str]()
    SITE_SETTINGS_CACHE_TIMEOUT = _Setting[float]()
    SITE_SETTINGS_VERIFY_INTERVAL = _Setting[float]()
    TOKEN_STORE = _Setting[Literal["auto", "redis", "database"]]()
    TOKEN_DEFAULT_TTL = _Setting[float]()
    TOKEN_MAX_TTL = _Setting[float]()
    TOKEN_MAX_PAYLOAD_BYTES = _Setting[int]()
    FIXTURE_BATCH_SIZE = _Setting[int]()

    @property
    def ENCRYPTION_KEYS(self) -> list[str]:
        return list(self.get("ENCRYPTION_KEYS"))

    SITE_SETTINGS_TRACKING = _Setting[bool]()
    SITE_SETTINGS_TRACKING_HEARTBEAT = _Setting[float]()


keel_settings = KeelSettings()


def reload_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget cached values when ``KEEL`` changes."""
    if setting == "KEEL":
        keel_settings.reload()
