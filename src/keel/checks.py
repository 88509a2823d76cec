"""System checks for ``settings.KEEL``.

Ids are never reused:

- ``keel.E001``: ``KEEL`` is not a dict.
- ``keel.E002``: ``REDIS_URL`` is not a Redis URL.
- ``keel.E003``: a TTL, interval or size is not a positive number.
- ``keel.E004``: a value has the wrong type or is not one of the allowed choices.
- ``keel.E005``: Redis is configured but redis-py is not installed.
- ``keel.E006``: ``TOKEN_STORE`` is ``"redis"`` but ``REDIS_URL`` is not set.
- ``keel.E007``: ``SITE_SETTINGS_CACHE_ALIAS`` names no entry of ``CACHES``.
- ``keel.W001``: an unknown key in ``KEEL`` (with a did-you-mean).
- ``keel.W002``: without Redis, site settings are shared through a per-process cache.
- ``keel.W010``: the database cache keel shares site settings through has no table yet.
- ``keel.E013``: ``MaintenanceModeMiddleware`` comes before the authentication middleware.
- ``keel.W008``: (deploy) Redis keeps action tokens without an always-synced append-only
  file: a restart can make consumed tokens valid again.
- ``keel.W009``: (deploy) Redis replicates action tokens asynchronously: a failover can make
  consumed tokens valid again.
- ``keel.E008``, ``keel.W003``, ``keel.W004``: see ``keel.site.checks``.
- ``keel.W005``: Redis (or a proxy in front of it) refuses RESP3 client tracking, so every
  site-settings read asks the store (``manage.py check --deploy``: it connects to Redis).
- ``keel.W007``: a state-machine model in the admin without ``StateMachineAdminMixin``
  (registered by ``keel.admin``).
- ``keel.W011``: the running Django is not one keel's private hooks were checked against
  (see ``keel.compat.check_supported``).

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.core import checks
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.utils.module_loading import import_string

from keel import compat
from keel.conf import SETTINGS, invalid_value_message, keel_settings, user_settings
from keel.site.registry import cached_models

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report every problem of ``settings.KEEL`` at once."""
    try:
        raw = user_settings()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="keel.E001")]

    messages: list[checks.CheckMessage] = []
    for name in raw:
        if name not in SETTINGS:
            close = difflib.get_close_matches(name, SETTINGS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else None
            messages.append(
                checks.Warning(f"KEEL[{name!r}] is not a keel setting.", hint=hint, id="keel.W001")
            )
    valid: dict[str, Any] = {}
    for name, spec in SETTINGS.items():
        value = raw.get(name, spec.default)
        message = invalid_value_message(name, value)
        if message is None:
            valid[name] = value
        else:
            messages.append(checks.Error(message, id=spec.check_id))

    redis_url = valid.get("REDIS_URL")
    if redis_url is not None and importlib.util.find_spec("redis") is None:
        messages.append(
            checks.Error(
                "KEEL['REDIS_URL'] is set but redis-py is not installed.",
                hint="pip install 'django-keel[redis]'",
                id="keel.E005",
            )
        )
    if "REDIS_URL" in valid and redis_url is None and valid.get("TOKEN_STORE") == "redis":
        messages.append(
            checks.Error(
                "KEEL['TOKEN_STORE'] is 'redis' but KEEL['REDIS_URL'] is not set.",
                hint="Set KEEL['REDIS_URL'], or KEEL['TOKEN_STORE'] to 'auto' or 'database'.",
                id="keel.E006",
            )
        )
    alias = valid.get("SITE_SETTINGS_CACHE_ALIAS")
    if alias is not None:
        cache = settings.CACHES.get(alias)
        if cache is None:
            messages.append(
                checks.Error(
                    f"KEEL['SITE_SETTINGS_CACHE_ALIAS'] is {alias!r}, which is not in CACHES.",
                    hint=f"Use one of {sorted(settings.CACHES)!r}.",
                    id="keel.E007",
                )
            )
        elif (
            "REDIS_URL" in valid
            and redis_url is None
            and cache.get("BACKEND") in PER_PROCESS_CACHES
            and cached_models()
        ):
            messages.append(
                checks.Warning(
                    f"Without KEEL['REDIS_URL'], site settings are shared through the "
                    f"{alias!r} cache, whose backend {cache['BACKEND']} lives in one process: "
                    "other processes see a change only when their copy expires.",
                    hint="Set KEEL['REDIS_URL'], or point KEEL['SITE_SETTINGS_CACHE_ALIAS'] "
                    "at a shared cache (Redis, Memcached, database).",
                    id="keel.W002",
                )
            )
    return messages


def _middleware_index(base: type) -> int | None:
    """Position in ``MIDDLEWARE`` of the first entry that is ``base`` or a subclass of it."""
    for index, dotted in enumerate(settings.MIDDLEWARE):
        try:
            middleware = import_string(dotted)
        except ImportError:
            continue  # Django reports an unimportable middleware itself.
        if isinstance(middleware, type) and issubclass(middleware, base):
            return index
    return None


@checks.register()
def check_middleware(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``MaintenanceModeMiddleware`` needs ``request.user``: it must follow authentication."""
    from keel.site.middleware import MaintenanceModeMiddleware

    maintenance = _middleware_index(MaintenanceModeMiddleware)
    if maintenance is None:
        return []
    authentication = _middleware_index(AuthenticationMiddleware)
    if authentication is not None and authentication < maintenance:
        return []
    where = "is missing" if authentication is None else "comes after it"
    return [
        checks.Error(
            f"{settings.MIDDLEWARE[maintenance]} reads request.user, but "
            f"AuthenticationMiddleware {where} in MIDDLEWARE.",
            hint="Put keel.site.middleware.MaintenanceModeMiddleware after "
            "django.contrib.auth.middleware.AuthenticationMiddleware.",
            id="keel.E013",
        )
    ]


@checks.register(checks.Tags.database)
def check_cache_table(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """Without Redis, a database cache shared by site settings needs its table.

    A database check: ``migrate`` runs it, and ``check --database <alias>``.
    """
    if not databases or keel_settings.REDIS_URL is not None or not cached_models():
        return []
    alias = keel_settings.SITE_SETTINGS_CACHE_ALIAS
    cache = caches[alias]
    if not isinstance(cache, DatabaseCache):
        return []
    database = router.db_for_read(cache.cache_model_class)
    if database not in databases:
        return []
    table = settings.CACHES[alias]["LOCATION"]
    with connections[database].cursor() as cursor:
        tables = connections[database].introspection.table_names(cursor)
    if table in tables:
        return []
    return [
        checks.Warning(
            f"The table {table!r} of CACHES[{alias!r}], the database cache keel shares site "
            f"settings through, does not exist in database {database!r}: every read of the "
            "settings falls back to a query.",
            hint="Run: python manage.py createcachetable",
            id="keel.W010",
        )
    ]


@checks.register(deploy=True)
def check_tracking(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``keel.W005``: the configured Redis refuses client tracking (an unreachable server is
    not reported here: reads already log it)."""
    try:
        enabled = keel_settings.REDIS_URL is not None and keel_settings.SITE_SETTINGS_TRACKING
    except ImproperlyConfigured:
        return []  # check_settings reports it
    if not enabled or importlib.util.find_spec("redis") is None:
        return []
    from keel.site.tracking import probe

    reason = probe()
    if reason is None:
        return []
    return [
        checks.Warning(
            f"Redis client tracking is unavailable: {reason}. Every site-settings read then "
            "asks the store (one round trip) instead of none.",
            hint="Use Redis 6 or later without a proxy that filters HELLO or CLIENT, or set "
            "KEEL['SITE_SETTINGS_TRACKING'] = False to silence this warning.",
            id="keel.W005",
        )
    ]


# The checks of keel's project state (cached fields, key prefix) register on import.
from keel.site import checks as _site_checks  # noqa: E402, F401

# The Redis token store's deployment checks (keel.W008, keel.W009) live with the tokens.
from keel.tokens import checks as _token_checks  # noqa: E402, F401

# The supported-Django check (keel.W011) lives with the hooks it is about.
checks.register()(compat.check_supported)
