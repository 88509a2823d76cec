"""Fixtures of the tests of ``keel.site``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import redis

from keel.redis import get_redis


class CountingConnection(redis.Connection):
    """A real redis-py connection that records the commands it sends and its connects."""

    commands: ClassVar[list[str]] = []
    connects: ClassVar[int] = 0

    def on_connect(self) -> None:
        CountingConnection.connects += 1
        super().on_connect()

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        CountingConnection.commands.append(str(args[0]).upper())
        super().send_command(*args, **kwargs)

    @classmethod
    def reset(cls) -> None:
        cls.commands.clear()
        cls.connects = 0


@pytest.fixture
def counted_redis(keel_redis: redis.Redis, settings: Any) -> Iterator[type[CountingConnection]]:
    """Redis on, through connections that count commands (client tracking off: these tests
    count what the store path costs; tests/site/test_tracking_reads.py counts the tracked one)."""
    settings.KEEL = {
        **settings.KEEL,
        "REDIS_OPTIONS": {"connection_class": CountingConnection},
        "SITE_SETTINGS_TRACKING": False,
    }
    get_redis().ping()  # connect outside the counted part
    CountingConnection.reset()
    yield CountingConnection
    CountingConnection.reset()
