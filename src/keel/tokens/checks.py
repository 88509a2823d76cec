"""Deployment checks of the Redis token store: can Redis give a consumed token back?

They run with ``manage.py check --deploy`` only (they talk to Redis), when the tokens live in
Redis (``KEEL['TOKEN_STORE']`` is ``'redis'``, or ``'auto'`` with ``KEEL['REDIS_URL']``):

- ``keel.W008``: the server's configuration, read with ``CONFIG GET``, is not
  ``appendonly yes`` with ``appendfsync always``: after a restart Redis reloads an older
  snapshot (or loses the last second of its append-only file), and tokens consumed since then
  are valid again. Nothing is reported when ``CONFIG GET`` is refused: keel cannot tell.
- ``keel.W009``: the server has replicas, which Redis updates asynchronously: after a
  failover, a consume the old master acknowledged may never have reached the new one.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks

from keel.conf import keel_settings
from keel.redis import get_redis, is_configured, redis_errors

DURABLE = {"appendonly": "yes", "appendfsync": "always"}


def uses_redis_tokens() -> bool:
    """Whether managers that follow ``KEEL['TOKEN_STORE']`` keep their tokens in Redis."""
    store = keel_settings.TOKEN_STORE
    return store == "redis" or (store == "auto" and is_configured())


def _per_node(reply: Any) -> list[dict[str, Any]]:
    """One dict per server: a Cluster client answers ``{node: reply}``, others the reply."""
    if isinstance(reply, dict) and reply and all(isinstance(v, dict) for v in reply.values()):
        return list(reply.values())
    return [reply] if isinstance(reply, dict) else []


@checks.register(checks.Tags.security, deploy=True)
def check_token_persistence(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report the Redis configurations under which a consumed token can come back."""
    if not uses_redis_tokens():
        return []
    errors = redis_errors()
    try:
        client = get_redis()
        replication = _per_node(client.info("replication"))
    except errors:
        return []  # Redis unreachable: keel.redis.health_check reports that, not this check
    messages: list[checks.CheckMessage] = []
    try:
        configs = _per_node(client.config_get("append*"))
    except errors:
        configs = []  # CONFIG refused (ACL, renamed command, managed service): cannot tell
    weak = sorted(
        {
            f"{name} {config.get(name)}"
            for config in configs
            for name, durable in DURABLE.items()
            if config.get(name) != durable
        }
    )
    if weak:
        messages.append(
            checks.Warning(
                f"Redis keeps action tokens with {', '.join(weak)}: after a restart it reloads "
                "older data, and tokens consumed since then can be used again.",
                hint="Set 'appendonly yes' and 'appendfsync always' on the Redis server, or "
                "keep security tokens (password resets, magic links) in the database store.",
                id="keel.W008",
            )
        )
    replicas = sum(int(info.get("connected_slaves", 0)) for info in replication)
    if replicas:
        messages.append(
            checks.Warning(
                f"Redis replicates action tokens to {replicas} replica(s) asynchronously: "
                "after a failover, a token consumed on the old master can be used again.",
                hint="Give security-token managers store=RedisTokenStore(wait_replicas=1), "
                "or keep those tokens in the database store.",
                id="keel.W009",
            )
        )
    return messages
