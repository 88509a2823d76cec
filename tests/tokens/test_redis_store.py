"""The Redis store: one command per operation, expiry always set, failures never hidden."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.test.utils import override_settings

from keel import redis as keel_redis
from keel.tokens import (
    JsonActionTokenManager,
    JsonActionTokenRedisManager,
    TokenStoreUnavailable,
)
from tests.conftest import require_service

pytestmark = pytest.mark.redis

DEAD_REDIS = "redis://127.0.0.1:1/0"
PREFIX = "test:redis"
#: Commands that are not the operation under test: this harness's own, and the handshake and
#: health check redis-py sends when it opens a connection.
#: Commands the subject-index script runs inside Redis (no round trip each).
INDEX_SCRIPT_COMMANDS = {"time", "zremrangebyscore", "zadd", "zrange", "pexpireat", "zrangebyscore"}
NOT_OPERATIONS = {"info", "config|resetstat", "hello", "ping", "client|setinfo", "select"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A throwaway ``redis-server`` of this test alone: it may be inspected and killed."""

    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            require_service("redis-server", "the executable is needed to start and kill a server")
        assert executable is not None  # require_service skipped or failed otherwise
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def command_calls(self, run: Callable[[], Any]) -> dict[str, int]:
        """The commands the server processed while ``run()`` ran, by name."""
        self.client.config_resetstat()
        run()
        stats = self.client.info("commandstats")
        calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
        return {name: n for name, n in calls.items() if name not in NOT_OPERATIONS}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.client.close()


@pytest.fixture
def private_redis(settings: Any) -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    settings.KEEL = {**settings.KEEL, "REDIS_URL": server.url}
    try:
        yield server
    finally:
        keel_redis.reset_clients()
        server.kill()


@pytest.fixture
def manager() -> JsonActionTokenRedisManager:
    return JsonActionTokenRedisManager(prefix=PREFIX)


def test_create_is_one_set_command(
    private_redis: PrivateRedis, manager: JsonActionTokenManager
) -> None:
    assert private_redis.command_calls(lambda: manager.create_token({"a": 1})) == {"set": 1}


def test_peek_is_one_get_and_consume_is_one_getdel(
    private_redis: PrivateRedis, manager: JsonActionTokenManager
) -> None:
    token = manager.create_token({"a": 1})
    assert private_redis.command_calls(lambda: manager.get_token_data(token)) == {"get": 1}
    assert private_redis.command_calls(lambda: manager.consume_token(token)) == {"getdel": 1}
    assert private_redis.command_calls(lambda: manager.consume_token(token)) == {"getdel": 1}
    assert private_redis.command_calls(lambda: manager.delete_token(token)) == {"del": 1}


def test_async_operations_are_one_command_each(
    private_redis: PrivateRedis, manager: JsonActionTokenManager
) -> None:
    tokens: list[str] = []

    async def create() -> None:
        tokens.append(await manager.acreate_token({"a": 1}))

    assert private_redis.command_calls(lambda: asyncio.run(create())) == {"set": 1}
    token = tokens[0]
    calls = private_redis.command_calls(lambda: asyncio.run(manager.aconsume_token(token)))
    assert calls == {"getdel": 1}


def test_malformed_tokens_send_no_command(
    private_redis: PrivateRedis, manager: JsonActionTokenManager
) -> None:
    def attempts() -> None:
        for bad in ("", "other:x", "x" * 10_240, "é" * 43, "a" * 42 + "+"):
            assert manager.get_token_data(bad) is None
            assert manager.consume_token(bad) is None
            assert manager.delete_token(bad) is False

    assert private_redis.command_calls(attempts) == {}


def test_async_twins_use_the_asyncio_client_not_a_thread(
    private_redis: PrivateRedis, manager: JsonActionTokenManager
) -> None:
    keel_redis.reset_clients()

    async def flow() -> dict[str, Any] | None:
        token = await manager.acreate_token({"a": 1}, subject="s")
        assert await manager.aget_token_data(token) == {"a": 1}
        await manager.arevoke_subject("s")
        return await manager.aconsume_token(await manager.acreate_token({"b": 2}))

    assert asyncio.run(flow()) == {"b": 2}
    # No sync client was built: nothing ran through a thread wrapper.
    assert keel_redis._sync_client is None


def test_a_subject_token_is_indexed_first_then_deletes_the_previous_token(
    private_redis: PrivateRedis, manager: JsonActionTokenManager
) -> None:
    def round_trips(run: Callable[[], Any]) -> dict[str, int]:
        calls = private_redis.command_calls(run)
        return {name: n for name, n in calls.items() if name not in INDEX_SCRIPT_COMMANDS}

    manager.create_token({}, subject=2)  # loads the script into this new server
    # Index, write, then ask the index whether a later create overtook this one.
    assert round_trips(lambda: manager.create_token({}, subject=1)) == {"evalsha": 2, "set": 1}
    calls = round_trips(lambda: manager.create_token({}, subject=1))
    assert calls == {"evalsha": 2, "set": 1, "del": 1, "zrem": 1}


def test_every_key_has_an_expiry_and_the_key_prefix(
    private_redis: PrivateRedis, manager: JsonActionTokenManager
) -> None:
    manager.create_token({"a": 1})
    manager.create_token({"a": 1}, ttl_seconds=1.75)
    manager.create_token({"a": 1}, ttl_hours=1.5, subject="user@example.com")
    keys = list(private_redis.client.scan_iter())
    assert len(keys) == 4
    for key in keys:
        assert key.decode().startswith(f"{django_settings.TEST_KEY_PREFIX}:token")
        assert private_redis.client.pttl(key) > 0
        assert b"user@example.com" not in key


def test_fractional_ttls_are_kept_to_the_millisecond(
    private_redis: PrivateRedis, manager: JsonActionTokenManager
) -> None:
    token = manager.create_token({"a": 1}, ttl_seconds=1.75)
    key = f"{django_settings.TEST_KEY_PREFIX}:token:{PREFIX}:{manager.digest(token)}"
    assert 1000 < private_redis.client.pttl(key) <= 1750
    token = manager.create_token({"a": 1}, ttl_seconds=60)
    key = f"{django_settings.TEST_KEY_PREFIX}:token:{PREFIX}:{manager.digest(token)}"
    assert 59_000 < private_redis.client.pttl(key) <= 60_000


def test_decoded_responses_are_supported(redis_url: str, settings: Any) -> None:
    settings.KEEL = {
        **settings.KEEL,
        "REDIS_URL": redis_url,
        "REDIS_OPTIONS": {"decode_responses": True},
    }
    manager = JsonActionTokenRedisManager(prefix=PREFIX)
    token = manager.create_token({"a": 1}, subject=5)
    assert manager.get_token_data(token) == {"a": 1}
    manager.create_token({"b": 2}, subject=5)
    assert manager.consume_token(token) is None
    keel_redis.get_redis().delete(*keel_redis.get_redis().keys(f"{settings.TEST_KEY_PREFIX}*"))


# -- Redis down ----------------------------------------------------------------------------


def test_with_redis_down_create_raises_and_hands_out_no_token(
    settings: Any, manager: JsonActionTokenManager
) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": DEAD_REDIS}
    with pytest.raises(TokenStoreUnavailable, match="Redis did not answer while trying to create"):
        manager.create_token({"a": 1})
    with pytest.raises(TokenStoreUnavailable):
        manager.create_token({"a": 1}, subject="s")


def test_with_redis_down_reads_raise_rather_than_pretend_the_token_is_invalid(
    settings: Any, manager: JsonActionTokenManager
) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": DEAD_REDIS}
    token = manager.make_token()
    for operation in (
        manager.get_token_data,
        manager.consume_token,
        manager.delete_token,
        manager.revoke_subject,
    ):
        with pytest.raises(TokenStoreUnavailable):
            operation(token)


def test_with_redis_down_async_operations_raise(
    settings: Any, manager: JsonActionTokenManager
) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": DEAD_REDIS}
    token = manager.make_token()

    async def attempt(name: str) -> None:
        if name == "create":
            await manager.acreate_token({"a": 1})
        elif name == "get":
            await manager.aget_token_data(token)
        elif name == "consume":
            await manager.aconsume_token(token)
        elif name == "delete":
            await manager.adelete_token(token)
        else:
            await manager.arevoke_subject("s")

    for name in ("create", "get", "consume", "delete", "revoke"):
        with pytest.raises(TokenStoreUnavailable):
            asyncio.run(attempt(name))


def test_redis_failures_are_logged_as_warnings(
    settings: Any, manager: JsonActionTokenManager, caplog: pytest.LogCaptureFixture
) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": DEAD_REDIS}
    keel_redis._last_logged.clear()
    with (
        caplog.at_level(logging.WARNING, logger="keel.redis"),
        pytest.raises(TokenStoreUnavailable),
    ):
        manager.consume_token(manager.make_token())
    assert "Redis unavailable during tokens.consume" in caplog.text


def test_a_server_killed_mid_flow_raises_and_never_returns_an_unstored_token(
    private_redis: PrivateRedis, manager: JsonActionTokenManager
) -> None:
    token = manager.create_token({"a": 1})
    assert manager.get_token_data(token) == {"a": 1}
    private_redis.kill()
    with pytest.raises(TokenStoreUnavailable):
        manager.consume_token(token)
    with pytest.raises(TokenStoreUnavailable):
        manager.create_token({"b": 2})
    with pytest.raises(TokenStoreUnavailable):
        asyncio.run(manager.acreate_token({"b": 2}))


def test_a_token_created_before_an_outage_is_still_valid_after(
    settings: Any, redis_url: str, keel_redis: redis.Redis, manager: JsonActionTokenManager
) -> None:
    token = manager.create_token({"a": 1})
    with (
        override_settings(KEEL={**settings.KEEL, "REDIS_URL": DEAD_REDIS}),
        pytest.raises(TokenStoreUnavailable),
    ):
        manager.consume_token(token)
    assert manager.consume_token(token) == {"a": 1}


# -- a step of a create or a revoke fails: no revoked-but-live token ---------------------------


def restricted_url(server: PrivateRedis, *denied: str) -> str:
    """A URL of ``server`` for an ACL user refused ``denied``: a real, permanent failure."""
    server.client.execute_command(
        "ACL", "SETUSER", "limited", "reset", "on", "nopass", "~*", "&*", "+@all",
        *(f"-{command}" for command in denied),
    )  # fmt: skip
    return f"redis://limited:any@127.0.0.1:{server.port}/0"


@contextmanager
def deletes_refused(private_redis: PrivateRedis, settings: Any) -> Iterator[None]:
    """Inside, keel's Redis user may not delete: a store operation fails midway."""
    full = settings.KEEL
    settings.KEEL = {**full, "REDIS_URL": restricted_url(private_redis, "del", "unlink")}
    try:
        yield
    finally:
        settings.KEEL = full


def test_a_create_whose_last_step_fails_leaves_the_old_token_revocable(
    private_redis: PrivateRedis, manager: JsonActionTokenManager, settings: Any
) -> None:
    sent = manager.create_token({"link": 1}, subject="ada")
    # The new token is stored, then deleting the previous one is refused.
    with deletes_refused(private_redis, settings), pytest.raises(TokenStoreUnavailable):
        manager.create_token({"link": 2}, subject="ada")
    assert manager.get_token_data(sent) == {"link": 1}  # the create failed: the link still works
    assert manager.revoke_subject("ada") >= 1
    assert manager.get_token_data(sent) is None
    assert manager.consume_token(sent) is None


def test_a_revoke_that_fails_midway_can_be_retried(
    private_redis: PrivateRedis, manager: JsonActionTokenManager, settings: Any
) -> None:
    sent = manager.create_token({"link": 1}, subject="ada")
    with deletes_refused(private_redis, settings), pytest.raises(TokenStoreUnavailable):
        manager.revoke_subject("ada")
    assert manager.revoke_subject("ada") == 1
    assert manager.get_token_data(sent) is None


def test_async_create_and_revoke_fail_the_same_way(
    private_redis: PrivateRedis, manager: JsonActionTokenManager, settings: Any
) -> None:
    sent = asyncio.run(manager.acreate_token({"link": 1}, subject="ada"))
    with deletes_refused(private_redis, settings):
        with pytest.raises(TokenStoreUnavailable):
            asyncio.run(manager.acreate_token({"link": 2}, subject="ada"))
        with pytest.raises(TokenStoreUnavailable):
            asyncio.run(manager.arevoke_subject("ada"))
    assert asyncio.run(manager.arevoke_subject("ada")) >= 1
    assert manager.get_token_data(sent) is None
