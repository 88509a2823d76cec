"""The read path with Redis client tracking: warm reads cost nothing, changes arrive in
milliseconds, and a lost tracking connection sends reads back through the store."""

from __future__ import annotations

import time
from typing import Any

import pytest

from keel.site.tracking import InvalidationListener
from tests.reliability import servers
from tests.site.conftest import CountingConnection, round_trips, start_reader, tracked
from tests.testapp.models.site import SiteSettings


@pytest.fixture
def listener(server: servers.Server, settings: Any) -> InvalidationListener:
    """keel on ``server`` with client tracking (heartbeat 0.5 s); the live listener."""
    return tracked(settings, server, SITE_SETTINGS_TRACKING_HEARTBEAT=0.5)


def save_phone(phone: str) -> None:
    row = SiteSettings.objects.get()
    row.phone = phone
    row.save()


@pytest.mark.django_db(transaction=True)
def test_a_warm_read_with_tracking_costs_no_round_trip_and_no_sql(
    listener: InvalidationListener,
) -> None:
    save_phone("warm")
    SiteSettings.load()
    SiteSettings.load()  # the copy of the first read may predate its own write's invalidation
    with round_trips() as queries:
        for _ in range(200):
            assert SiteSettings.load().phone == "warm"
    assert CountingConnection.commands == []
    assert len(queries) == 0


READ_UNTIL_CHANGED = """
    from keel.site.tracking import get_listener
    assert get_listener().wait_live(5)
    first = SiteSettings.load().phone
    SiteSettings.load()
    print("ready", first, flush=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        phone = SiteSettings.load().phone
        if phone != first:
            print("seen", phone, time.time(), flush=True)
            break
        time.sleep(0.001)
"""


@pytest.mark.django_db(transaction=True)
def test_a_change_saved_here_is_seen_by_another_process_within_milliseconds(
    listener: InvalidationListener, settings: Any
) -> None:
    save_phone("first")
    reader = start_reader(READ_UNTIL_CHANGED, {**settings.KEEL, "REDIS_OPTIONS": {}})
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().split() == ["ready", "first"]
        saved_at = time.time()
        save_phone("second")
        seen = reader.stdout.readline().split()
    finally:
        reader.kill()
        reader.wait()
    assert seen[:2] == ["seen", "second"]
    lag = float(seen[2]) - saved_at
    assert lag < 0.25, f"seen after {lag * 1000:.0f} ms"


@pytest.mark.django_db(transaction=True)
def test_a_lost_tracking_connection_sends_the_next_read_through_the_store(
    listener: InvalidationListener, server: servers.Server
) -> None:

    save_phone("kept")
    SiteSettings.load()
    SiteSettings.load()
    CountingConnection.reset()
    assert SiteSettings.load().phone == "kept"
    assert CountingConnection.commands == []
    admin = server.client()
    tracking_ids = [c["id"] for c in admin.client_list() if "t" in c["flags"]]
    assert tracking_ids
    for client_id in tracking_ids:
        admin.client_kill_filter(_id=client_id)
    deadline = time.monotonic() + 5
    while listener.live:  # the cut is noticed
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert SiteSettings.load().phone == "kept"
    assert CountingConnection.commands == ["EVALSHA"]  # not live: through the store
    assert listener.wait_live(5)
    SiteSettings.load()
    CountingConnection.reset()
    assert SiteSettings.load().phone == "kept"
    assert CountingConnection.commands == []  # live again: no round trip
