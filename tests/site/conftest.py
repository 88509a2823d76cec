"""Fixtures of the tests of ``keel.site``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext

from keel.redis import get_redis
from keel.site.cache import reset_process_state
from keel.site.tracking import InvalidationListener, get_listener
from tests.conftest import ROOT
from tests.reliability import servers


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


@pytest.fixture
def store_redis(keel_redis: redis.Redis, settings: Any) -> redis.Redis:
    """``keel_redis`` without the process-copy window: each read outside a request asks the
    store."""
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    return keel_redis


@pytest.fixture
def store_reads(counted_redis: type[CountingConnection], settings: Any) -> type[CountingConnection]:
    """``counted_redis`` without the process-copy window: each read outside a request asks the
    store."""
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    return counted_redis


def tracked(settings: Any, server: servers.Server, **keel: Any) -> InvalidationListener:
    """Turn on keel's Redis ``server`` with client tracking and no process-copy window (so
    tracking alone keeps copies), commands counted, ``keel`` settings on top; returns the
    process's listener once it is live."""
    settings.KEEL = {
        **settings.KEEL,
        "REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
        "REDIS_OPTIONS": {"connection_class": CountingConnection},
        "SITE_SETTINGS_LOCAL_TTL": 0,
        **keel,
    }
    reset_process_state()
    listener = get_listener()
    assert listener is not None
    assert listener.wait_live(5), listener.refused
    return listener


#: The start of a reader process's script: Django set up on this test database, with the
#: ``KEEL`` setting given to [`start_reader`][tests.site.conftest.start_reader].
READER_SETUP = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    from tests import settings as test_settings
    config = json.loads(os.environ["KEEL_SITE_READER"])
    test_settings.DATABASES["default"]["NAME"] = config["db"]
    test_settings.KEEL = config["keel"]
    import django
    django.setup()
    from tests.testapp.models.site import SiteSettings
    """
)


def start_reader(loop: str, keel: dict[str, Any]) -> subprocess.Popen[str]:
    """A new Python process running ``READER_SETUP`` then ``loop`` (which prints what it reads
    to its standard output, a pipe), with ``keel`` as its ``KEEL`` setting."""
    config = {"db": connection.settings_dict["NAME"], "keel": keel}
    env = {**os.environ, "KEEL_SITE_READER": json.dumps(config)}
    return subprocess.Popen(
        [sys.executable, "-c", READER_SETUP + textwrap.dedent(loop)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


@contextmanager
def round_trips() -> Iterator[CaptureQueriesContext]:
    """Count from here: the Redis commands in ``CountingConnection.commands``, the SQL queries
    in the context yielded."""
    CountingConnection.reset()
    with CaptureQueriesContext(connection) as queries:
        yield queries


def write_from_another_process(keel: dict[str, Any], phone: str) -> None:
    """Save ``phone`` from a new Python process that exits right after its save."""
    config = {"db": connection.settings_dict["NAME"], "keel": keel, "phone": phone}
    env = {**os.environ, "KEEL_SITE_WRITER": json.dumps(config)}
    subprocess.run(
        [sys.executable, "-m", "tests.reliability.site_writer"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
