from __future__ import annotations

import asyncio

import pytest
import redis
import redis.sentinel
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


# -- topologies: parsing (the real Sentinel and Cluster are in test_reliability_topologies) -----


def test_plain_url_is_a_single_server() -> None:
    with override_settings(KEEL={"REDIS_URL": "redis://127.0.0.1:6379/3"}):
        described = keel_redis.topology()
    assert (described.kind, described.nodes, described.service_name) == ("single", (), None)
    assert described.connection["socket_timeout"] == keel_redis.DEFAULT_OPTIONS["socket_timeout"]


def test_sentinel_url_names_sentinels_service_database_and_credentials() -> None:
    url = "redis+sentinel://user:p%40ss@10.0.0.1:26379,[::1]:26380,sentinel-3/mymaster/4"
    with override_settings(
        KEEL={"REDIS_URL": url, "REDIS_OPTIONS": {"sentinel_kwargs": {"password": "s"}}}
    ):
        described = keel_redis.topology()
    assert described.kind == "sentinel"
    assert described.nodes == (("10.0.0.1", 26379), ("::1", 26380), ("sentinel-3", 26379))
    assert described.service_name == "mymaster"
    assert described.connection["db"] == 4
    assert (described.connection["username"], described.connection["password"]) == (
        "user",
        "p@ss",
    )
    assert described.sentinel_kwargs == {"password": "s"}
    assert "sentinel_kwargs" not in described.connection


def test_sentinel_url_defaults_to_database_zero_and_tls_with_rediss() -> None:
    with override_settings(KEEL={"REDIS_URL": "rediss+sentinel://h:1/svc"}):
        described = keel_redis.topology()
    assert described.connection["db"] == 0
    assert described.connection["ssl"] is True


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h:1",
        "redis+sentinel://h:1/svc/0/extra",
        "redis+sentinel://h:port/svc",
        "redis+sentinel://:1/svc",
        "redis+sentinel://h:1/svc/x",
        "redis+cluster://h:1/3",
        "redis+cluster://h:1/0/1",
    ],
)
def test_malformed_topology_urls_are_improperly_configured(url: str) -> None:
    with override_settings(KEEL={"REDIS_URL": url}), pytest.raises(ImproperlyConfigured):
        keel_redis.topology()


def test_cluster_by_scheme_or_by_option() -> None:
    with override_settings(KEEL={"REDIS_URL": "redis+cluster://a:7000,b:7001"}):
        by_scheme = keel_redis.topology()
    with override_settings(
        KEEL={"REDIS_URL": "redis://a:7000/0", "REDIS_OPTIONS": {"cluster": True}}
    ):
        by_option = keel_redis.topology()
    assert by_scheme.kind == by_option.kind == "cluster"
    assert by_scheme.nodes == (("a", 7000), ("b", 7001))
    assert by_option.nodes == (("a", 7000),)
    assert "cluster" not in by_option.connection
    assert "db" not in by_scheme.connection


def test_unknown_client_options_are_improperly_configured_for_a_cluster() -> None:
    async def build() -> object:
        return get_async_redis()

    keel = {"REDIS_URL": "redis+cluster://127.0.0.1:1", "REDIS_OPTIONS": {"bogus": 1}}
    with override_settings(KEEL=keel), pytest.raises(ImproperlyConfigured, match="bogus"):
        asyncio.run(build())


def test_every_topology_scheme_passes_settings_validation() -> None:
    from keel.conf import invalid_value_message

    for url in ("redis+sentinel://h:1/s", "rediss+sentinel://h:1/s", "redis+cluster://h:1"):
        assert invalid_value_message("REDIS_URL", url) is None
    assert "redis+cluster" in (invalid_value_message("REDIS_URL", "memcached://h") or "")


def test_tagged_keys_share_a_hash_slot() -> None:
    with override_settings(KEEL={"KEY_PREFIX": "site"}):
        first, second = make_key("a", tag="t"), make_key("b", "c", tag="t")
        assert first == "site:{t}:a"
        assert second == "site:{t}:b:c"
        assert keel_redis.key_slot(first) == keel_redis.key_slot(second)
        assert keel_redis.key_slot(make_key("a")) != keel_redis.key_slot(make_key("b"))


@pytest.mark.parametrize("tag", ["", "a{b", "a}b", "{x}"])
def test_a_hash_tag_with_braces_or_empty_is_refused(tag: str) -> None:
    with pytest.raises(ValueError, match="hash tag"):
        make_key("a", tag=tag)


def test_cluster_errors_count_as_redis_errors() -> None:
    assert redis.exceptions.RedisClusterException in keel_redis.redis_errors()
    assert issubclass(redis.sentinel.MasterNotFoundError, keel_redis.redis_errors())


@pytest.mark.parametrize(
    ("keel", "error"),
    [
        (
            {"REDIS_URL": "redis://127.0.0.1:6379/0", "REDIS_OPTIONS": {"no_such_option": 1}},
            "TypeError",
        ),
        ({"REDIS_URL": "redis://127.0.0.1:notaport/0"}, "ValueError"),
        ({"REDIS_URL": "redis+sentinel://127.0.0.1:1/"}, "ImproperlyConfigured"),
        ({"REDIS_URL": 42}, "ImproperlyConfigured"),
        ([], "ImproperlyConfigured"),
    ],
)
def test_health_check_never_raises(keel: object, error: str) -> None:
    with override_settings(KEEL=keel):
        status = health_check()
    assert not status.ok
    assert (status.error or "").startswith(error), status.error
