"""The warm read's remembered verdict: a warm ``load()`` serves the process copy on the
verdict of the last full check, and that verdict never outlives what it depended on (an
invalidation, a flush, a lost listener, a newer version read from the database, the window's
end, an override, a publication pending in this process's transaction, an open request
memo)."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import redis
from django.db import connection, transaction
from django.db.models import QuerySet

from keel.site import versions
from keel.site.cache import request_scope
from keel.site.documents import generation_key
from keel.site.tracking import InvalidationListener, get_listener
from keel.site.verdicts import changes
from keel.test import override_site_settings
from tests.reliability import servers
from tests.site.conftest import CountingConnection
from tests.site.conftest import tracked as tracked_with
from tests.testapp.models.site import SiteSettings


def tracked(settings: Any, server: servers.Server) -> InvalidationListener:
    # Long deadlines: only a change of state may end a verdict within these tests.
    return tracked_with(
        settings, server, SITE_SETTINGS_TRACKING_HEARTBEAT=30, SITE_SETTINGS_VERIFY_INTERVAL=30
    )


def save_phone(phone: str) -> None:
    row = SiteSettings.load()
    row.phone = phone
    row.save()


def changed_elsewhere(phone: str) -> None:
    """What another process's write leaves in the database: the row and its version,
    committed, with nothing of this process told."""
    QuerySet(SiteSettings).filter(pk=SiteSettings.singleton_pk).update(phone=phone)
    versions.increment(SiteSettings, "default")


def warm(phone: str) -> None:
    """Read until the verdict is remembered, and check that it is what serves reads."""
    for _ in range(3):
        assert SiteSettings.load().phone == phone
    hot = SiteSettings._source().hot
    assert hot is not None
    assert hot[1] == changes.count


def warm_for_an_hour(settings: Any, phone: str) -> None:
    """Save ``phone`` and read until the verdict is remembered, with an hour's window: only
    what the test does may end it."""
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 3600}
    save_phone(phone)
    warm(phone)


def wait_not_current(listener: InvalidationListener, key: str, stamp: int) -> None:
    deadline = time.monotonic() + 5
    while listener.is_current(key, stamp):
        assert time.monotonic() < deadline
        time.sleep(0.002)


@pytest.mark.django_db(transaction=True)
def test_a_warm_read_returns_a_private_copy_each_time(settings: Any) -> None:
    warm_for_an_hour(settings, "own")
    first, second = SiteSettings.load(), SiteSettings.load()
    assert first is not second
    first.phone = "changed by the caller"
    assert second.phone == "own"
    assert SiteSettings.load().phone == "own"
    assert first._state is not second._state
    assert second._state.db == "default"
    assert second._state.adding is False


def assert_the_verdict_ends_after(
    server: servers.Server, settings: Any, act: Callable[[redis.Redis, str], object]
) -> None:
    """A warm verdict, a change committed elsewhere, then ``act(client, generation key)`` on
    the store: the next read sees the change."""
    listener = tracked(settings, server)
    save_phone("old")
    warm("old")
    key = generation_key(SiteSettings)
    stamp = listener.stamp()
    assert stamp is not None
    changed_elsewhere("new")
    act(server.client(), key)
    wait_not_current(listener, key, stamp)
    assert SiteSettings.load().phone == "new"


@pytest.mark.django_db(transaction=True)
def test_an_invalidation_ends_the_remembered_verdict(server: servers.Server, settings: Any) -> None:
    # What the other process's publication does to the store.
    assert_the_verdict_ends_after(server, settings, lambda client, key: client.delete(key))


@pytest.mark.django_db(transaction=True)
def test_a_flush_ends_the_remembered_verdict(server: servers.Server, settings: Any) -> None:
    assert_the_verdict_ends_after(server, settings, lambda client, key: client.flushdb())


@pytest.mark.django_db(transaction=True)
def test_a_lost_listener_ends_the_remembered_verdict(server: servers.Server, settings: Any) -> None:
    listener = tracked(settings, server)
    save_phone("kept")
    warm("kept")
    admin = server.client()
    for client in admin.client_list():
        if "t" in client["flags"]:
            admin.client_kill_filter(_id=client["id"])
    deadline = time.monotonic() + 5
    while listener.live:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    CountingConnection.reset()
    assert SiteSettings.load().phone == "kept"
    assert CountingConnection.commands == ["EVALSHA"]  # through the store


@pytest.mark.django_db(transaction=True)
def test_a_closed_listener_ends_the_remembered_verdict_at_once(
    server: servers.Server, settings: Any
) -> None:
    listener = tracked(settings, server)
    save_phone("kept")
    warm("kept")
    listener.close()
    CountingConnection.reset()
    assert SiteSettings.load().phone == "kept"
    assert "EVALSHA" in CountingConnection.commands


@pytest.mark.django_db(transaction=True)
def test_a_newer_version_read_from_the_database_ends_the_remembered_verdict(
    settings: Any, clock: ModuleType
) -> None:
    settings.KEEL = {
        **settings.KEEL,
        "SITE_SETTINGS_LOCAL_TTL": 3600,
        "SITE_SETTINGS_VERIFY_INTERVAL": 0.2,
    }
    save_phone("old")
    warm("old")
    changed_elsewhere("new")  # a write whose publication never reached the store
    assert SiteSettings.load().phone == "old"  # the window, until the version is due
    clock.advance(0.25)
    assert SiteSettings.load().phone == "new"


@pytest.mark.django_db(transaction=True)
def test_a_newer_version_read_by_another_read_ends_the_remembered_verdict(settings: Any) -> None:
    warm_for_an_hour(settings, "old")
    changed_elsewhere("new")
    # What a read of any cached model does when the store is ahead of what it knows.
    versions.known_version(SiteSettings, "default", refresh=True)
    assert SiteSettings.load().phone == "new"


@pytest.mark.django_db(transaction=True)
def test_the_end_of_the_window_ends_the_remembered_verdict(
    keel_redis: Any, settings: Any, clock: ModuleType
) -> None:
    settings.KEEL = {
        **settings.KEEL,
        "REDIS_OPTIONS": {"connection_class": CountingConnection},
        "SITE_SETTINGS_TRACKING": False,
        "SITE_SETTINGS_LOCAL_TTL": 0.2,
        "SITE_SETTINGS_VERIFY_INTERVAL": 30,
    }
    save_phone("kept")
    warm("kept")
    CountingConnection.reset()
    assert SiteSettings.load().phone == "kept"
    assert CountingConnection.commands == []  # inside the window
    clock.advance(0.25)
    assert SiteSettings.load().phone == "kept"
    assert CountingConnection.commands == ["EVALSHA"]


@pytest.mark.django_db(transaction=True)
def test_an_override_ends_the_remembered_verdict(settings: Any) -> None:
    warm_for_an_hour(settings, "real")
    with override_site_settings(SiteSettings, phone="overridden"):
        for _ in range(3):
            assert SiteSettings.load().phone == "overridden"
    assert SiteSettings.load().phone == "real"


@pytest.mark.django_db(transaction=True)
def test_a_publication_pending_in_this_transaction_ends_the_remembered_verdict(
    settings: Any,
) -> None:
    warm_for_an_hour(settings, "before")
    with transaction.atomic():
        save_phone("inside")
        assert SiteSettings.load().phone == "inside"  # read-your-own-writes
        assert SiteSettings.load().phone == "inside"
        transaction.set_rollback(True)
    assert SiteSettings.load().phone == "before"


@pytest.mark.django_db(transaction=True)
def test_an_open_request_memo_is_served_the_same_object(settings: Any) -> None:
    warm_for_an_hour(settings, "memo")
    with request_scope():
        assert SiteSettings.load() is SiteSettings.load()
    assert SiteSettings.load() is not SiteSettings.load()


def a_phone_in_each_database(settings: Any) -> None:
    """Save a phone of its own in each database, with an hour's window."""
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 3600}
    elsewhere = SiteSettings.load(using="other")
    elsewhere.phone = "other database"
    elsewhere.save(using="other")
    save_phone("default database")


class WritesToOther:
    def db_for_read(self, model: Any, **hints: Any) -> str:
        return "other"

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "other"


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_a_router_installed_later_ends_the_remembered_verdict(settings: Any) -> None:
    a_phone_in_each_database(settings)
    warm("default database")
    settings.DATABASE_ROUTERS = [f"{__name__}.WritesToOther"]
    assert SiteSettings.load().phone == "other database"


class PinnedRouter:
    """A router whose answer changes without a change of settings (pinning, say)."""

    target = "default"

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return PinnedRouter.target

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return PinnedRouter.target


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_no_verdict_is_remembered_while_a_router_decides(settings: Any) -> None:
    a_phone_in_each_database(settings)
    settings.DATABASE_ROUTERS = [f"{__name__}.PinnedRouter"]
    PinnedRouter.target = "default"
    try:
        for _ in range(3):
            assert SiteSettings.load().phone == "default database"
        PinnedRouter.target = "other"
        assert SiteSettings.load().phone == "other database"
    finally:
        PinnedRouter.target = "default"


@pytest.mark.django_db(transaction=True)
def test_a_change_of_settings_ends_the_remembered_verdict(settings: Any) -> None:
    warm_for_an_hour(settings, "old")
    changed_elsewhere("new")
    assert SiteSettings.load().phone == "old"
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    assert SiteSettings.load().phone == "new"


@pytest.mark.django_db(transaction=True)
def test_a_forked_child_never_serves_a_copy_its_parent_kept(
    server: servers.Server, settings: Any
) -> None:
    """A change made between the fork and the child's listener going live reaches no listener
    of the child: the copies the child inherited must not be trusted on its listener's word."""
    tracked(settings, server)
    save_phone("old")
    warm("old")
    forked_read, forked_write = os.pipe()
    changed_read, changed_write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the listener's thread: the point
        pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        outcome = "error"
        try:
            # Never touch the parent's database connection (no close: it would end the
            # parent's session): open one of the child's own.
            _inherited = connection.connection  # referenced until os._exit: no finalizer
            connection.connection = None
            os.write(forked_write, b"f")
            os.read(changed_read, 1)
            mine = get_listener()
            assert mine is not None and mine.wait_live(5)
            outcome = SiteSettings.load().phone
        finally:
            os.write(forked_write, outcome.encode())
            os._exit(0)
    try:
        assert os.read(forked_read, 1) == b"f"
        changed_elsewhere("new")
        server.client().delete(generation_key(SiteSettings))
        os.write(changed_write, b"c")
        _pid, status = os.waitpid(pid, 0)
        outcome = os.read(forked_read, 100).decode()
    finally:
        for fd in (forked_read, forked_write, changed_read, changed_write):
            os.close(fd)
    assert outcome == "new"
    assert status == 0
