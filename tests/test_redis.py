from __future__ import annotations

import asyncio

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from keel import redis as keel_redis
from keel.redis import get_async_redis, get_redis, health_check, make_key

pytestmark = pytest.mark.redis


def test_get_redis_reuses_one_client_and_pool(keel_redis: redis.Redis) -> None:
    assert get_redis() is get_redis() is keel_redis
    for _ in range(50):
        keel_redis.ping()
    assert len(keel_redis.connection_pool._available_connections) == 1  # type: ignore[attr-defined]


def test_client_is_rebuilt_when_keel_changes(keel_redis: redis.Redis, redis_url: str) -> None:
    with override_settings(KEEL={"REDIS_URL": redis_url.rsplit("/", 1)[0] + "/8"}):
        other = get_redis()
        assert other is not keel_redis
        assert other.connection_pool.connection_kwargs["db"] == 8
    assert get_redis() is not other


def test_async_client_is_one_per_event_loop(keel_redis: redis.Redis) -> None:
    async def twice() -> tuple[object, object, bool]:
        first, second = get_async_redis(), get_async_redis()
        return first, second, await first.ping()

    first, second, pong = asyncio.run(twice())
    assert first is second
    assert pong is True
    other, _, _ = asyncio.run(twice())
    assert other is not first


def test_options_are_merged_over_defaults(redis_url: str) -> None:
    with override_settings(KEEL={"REDIS_URL": redis_url, "REDIS_OPTIONS": {"socket_timeout": 3}}):
        kwargs = get_redis().connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 3
    assert kwargs["socket_connect_timeout"] == keel_redis.DEFAULT_OPTIONS["socket_connect_timeout"]


def test_key_prefix() -> None:
    with override_settings(KEEL={"KEY_PREFIX": "site"}):
        assert make_key("tokens", "abc") == "site:tokens:abc"


def test_asking_for_redis_without_url_is_improperly_configured() -> None:
    with override_settings(KEEL={}), pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        get_redis()


def test_health_check_reports_up_down_and_unconfigured(keel_redis: redis.Redis) -> None:
    up = health_check()
    assert up.ok and up.configured and up.latency_ms is not None
    # Port 1 on loopback refuses connections: a dead server, without stopping the real one.
    with override_settings(KEEL={"REDIS_URL": "redis://127.0.0.1:1/0"}):
        down = health_check()
    assert down.configured and not down.ok and "ConnectionError" in (down.error or "")
    with override_settings(KEEL={}):
        assert health_check().configured is False


def test_redis_errors_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    keel_redis._last_logged.clear()
    with override_settings(KEEL={"REDIS_ERROR_LOG_INTERVAL": 3600}):
        for _ in range(3):
            keel_redis.log_redis_error("test-op", ConnectionError("refused"))
    assert [r.getMessage() for r in caplog.records].count(
        "Redis unavailable during test-op (ConnectionError: refused)"
    ) == 1
