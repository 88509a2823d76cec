"""Shared fixtures: real services, loud skips, and clean-up of what the run wrote."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import django
import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import connection, connections
from django.db.models import Model
from django.dispatch import Signal

from keel import clock as keel_clock
from keel.redis import get_redis
from keel.site.cache import reset_process_state
from keel.site.tracking import InvalidationListener
from tests.reliability import servers

#: The repository's root folder.
ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a Python subprocess of a test: this process's, with the repository
    first on ``PYTHONPATH`` (so that ``tests`` imports) and the caller's entries kept after it
    (so that the subprocess imports the same keel), plus ``extra``."""
    path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **extra}


def require_service(name: str, reason: str) -> None:
    """Skip loudly, or fail when ``CI=true``: CI must never pass by skipping a service."""
    message = f"SERVICE MISSING: {name}: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing service fails the run)", pytrace=False)
    pytest.skip(message)


def _redis_problem() -> str | None:
    client = redis.Redis.from_url(django_settings.TEST_REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"{django_settings.TEST_REDIS_URL} unreachable ({exc})"
    finally:
        client.close()
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    problem = _redis_problem()
    return [
        f"keel: Django {django.get_version()}, database {os.environ.get('KEEL_TEST_DB', 'sqlite')}",
        f"keel: Redis {'MISSING: ' + problem if problem else django_settings.TEST_REDIS_URL}"
        f" (key prefix {django_settings.TEST_KEY_PREFIX})",
    ]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL, or a loud skip (a failure in CI) when it is unreachable."""
    problem = _redis_problem()
    if problem:
        require_service("redis", problem)
    return str(django_settings.TEST_REDIS_URL)


@pytest.fixture
def keel_redis(redis_url: str, settings: Any) -> Iterator[redis.Redis]:
    """Turn Redis on for one test; yields keel's client, deletes the test's keys after."""
    settings.KEEL = {**settings.KEEL, "REDIS_URL": redis_url}
    client = get_redis()
    yield client
    _delete_prefixed_keys(client)


def _delete_prefixed_keys(client: redis.Redis) -> None:
    keys = list(client.scan_iter(match=f"{django_settings.TEST_KEY_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_after_run() -> Iterator[None]:
    yield
    if _redis_problem() is None:
        client = redis.Redis.from_url(django_settings.TEST_REDIS_URL)
        _delete_prefixed_keys(client)
        client.close()


@pytest.fixture(autouse=True)
def _fresh_site_cache() -> Iterator[None]:
    """Every test starts with keel's site-cache process state and Django's cache empty."""
    reset_process_state()
    caches["default"].clear()
    yield
    reset_process_state()
    caches["default"].clear()


@pytest.fixture(params=["redis", "django-cache"])
def site_store(request: pytest.FixtureRequest, settings: Any) -> str:
    """Each store ``keel.site`` publishes to, in turn: Redis, or (without Redis) a Django
    cache; process copies kept for no time, so that every read asks the store."""
    if request.param == "redis":
        request.getfixturevalue("keel_redis")
    else:
        settings.KEEL = {**settings.KEEL, "REDIS_URL": None, "SITE_SETTINGS_CACHE_ALIAS": "default"}
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    return str(request.param)


@pytest.fixture
def clock() -> Iterator[ModuleType]:
    """keel's clock ([`keel.clock`][keel.clock]): ``clock.advance(seconds)`` moves every
    lifetime keel measures itself (database tokens, process copies, version checks, the pause
    after a store failure), and the database's clock as the database store reads it (the
    windows of one-time codes), instead of sleeping; the real time is back after the test.

    Redis' own TTLs do not move: a test of those still waits.
    """
    keel_clock.reset()
    yield keel_clock
    keel_clock.reset()


def current_stamp(listener: InvalidationListener) -> int:
    """The stamp of keel's tracking ``listener`` now (it is live)."""
    stamp = listener.stamp()
    assert stamp is not None
    return stamp


@contextmanager
def signal_received(signal: Signal, **options: Any) -> Iterator[list[dict[str, Any]]]:
    """What ``signal`` sends while the block runs (to a receiver connected with ``options``):
    the keyword arguments of each sending, ``sender`` included."""
    sent: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        sent.append(kwargs)

    signal.connect(receiver, **options)
    try:
        yield sent
    finally:
        signal.disconnect(receiver, **options)


@contextmanager
def table_of(model: type[Model]) -> Iterator[type[Model]]:
    """A table for ``model`` (a model built under ``isolate_apps``) while the block runs."""
    with connection.schema_editor() as editor:
        editor.create_model(model)
    try:
        yield model
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(model)


def in_threads(
    work: Callable[[int, threading.Barrier], T], n: int
) -> tuple[list[T], list[BaseException]]:
    """Run ``work(i, barrier)`` for each ``i`` below ``n``, each in its own thread and on its
    own connections, all sharing one ``barrier`` of ``n`` parties. Returns the results in the
    order they came, and the errors raised."""
    barrier = threading.Barrier(n)
    results: list[T] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results.append(work(i, barrier))
        except BaseException as exc:  # reported by the caller's assertion
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def at_once(work: Callable[[int], T], n: int) -> tuple[list[T], list[BaseException]]:
    """``in_threads``, each thread calling ``work(i)`` once all ``n`` are ready."""

    def run(i: int, barrier: threading.Barrier) -> T:
        barrier.wait()
        return work(i)

    return in_threads(run, n)


class Consumed(Counter[str]):
    """How many times each token was consumed, counted from any thread. ``sent`` maps each
    token to the ``n`` of the payload ``{"n": n}`` it was created with."""

    def __init__(self, sent: dict[str, int]) -> None:
        super().__init__()
        self.sent = sent
        self.lock = threading.Lock()

    def record(self, token: str, payload: object) -> None:
        """Count what consuming ``token`` answered: ``None`` (nothing consumed), or its own
        payload, never another token's."""
        if payload is not None:
            assert payload == {"n": self.sent[token]}
            with self.lock:
                self[token] += 1


@pytest.fixture
def db_vendor() -> str:
    return connection.vendor


@pytest.fixture
def transition_events() -> Iterator[list[tuple[Any, Any]]]:
    """``(source, target)`` of every ``post_state_transition`` sent during the test."""
    from keel.signals import post_state_transition

    received: list[tuple[Any, Any]] = []

    def receiver(sender: type, **kwargs: Any) -> None:
        received.append((kwargs["source"], kwargs["target"]))

    post_state_transition.connect(receiver)
    yield received
    post_state_transition.disconnect(receiver)


@contextmanager
def redis_processes() -> Iterator[servers.Processes]:
    """Redis servers of the test's own (``tests.reliability.servers``), all stopped on exit;
    a loud skip (a failure in CI) where ``redis-server`` cannot run."""
    problem = servers.binaries_problem()
    if problem:
        require_service("redis-server", problem)
    with servers.processes() as processes:
        yield processes


@pytest.fixture
def started() -> Iterator[servers.Processes]:
    """Start Redis servers for one test with ``started.start(*args)``; all stopped after it."""
    with redis_processes() as processes:
        yield processes


@pytest.fixture
def server(started: servers.Processes) -> Iterator[servers.Server]:
    """A Redis server of the test's own, started for the test and stopped after it, with the
    process's tracking listener reset."""
    from keel.site.tracking import reset_listener

    yield started.start()
    reset_listener()


def use_server(settings: Any, server: servers.Server, **keel: Any) -> dict[str, Any]:
    """Point keel at ``server`` (with ``keel`` settings on top) and forget what this process
    cached; returns the ``KEEL`` setting in force."""
    value = {
        **settings.KEEL,
        "REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
        # Short timeouts: a dead server is noticed in a fraction of a second.
        "REDIS_OPTIONS": {"socket_timeout": 0.3, "socket_connect_timeout": 0.3},
        **keel,
    }
    settings.KEEL = value
    reset_process_state()
    return value
