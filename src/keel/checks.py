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
- ``keel.W007``: a state-machine model in the admin without ``StateMachineAdminMixin``
  (registered by ``keel.admin``).
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from keel.conf import SETTINGS, invalid_value_message, user_settings

__all__ = ["check_settings"]

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
