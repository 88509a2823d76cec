"""The client-tracking listener against redis-server processes this module starts: what makes a
stamp stale (a write, a flush, a dead, paused or restarted server, a cut connection, an
unanswered heartbeat) and how fast."""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.test import override_settings

from keel.redis import make_key
from keel.site import tracking
from keel.site.tracking import InvalidationListener, get_listener, probe, reset_listener
from tests.conftest import current_stamp
from tests.reliability import servers

HEARTBEAT = 0.3


def tracking_settings(server: servers.Server, **extra: Any) -> dict[str, Any]:
    return {
        "REDIS_URL": f"redis://127.0.0.1:{server.port}/9",
        "KEY_PREFIX": "trk" + uuid.uuid4().hex[:8],
        "SITE_SETTINGS_TRACKING_HEARTBEAT": HEARTBEAT,
        **extra,
    }


@pytest.fixture
def listener(server: servers.Server) -> Iterator[InvalidationListener]:
    with override_settings(KEEL=tracking_settings(server)):
        found = get_listener()
        assert found is not None
        assert found.wait_live(5), found.refused
        yield found
    reset_listener()


def key(listener: InvalidationListener, name: str = "doc") -> str:
    return listener.prefix + name


def seconds_until(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.0005)
    return time.monotonic() - started


def seconds_until_stale(
    listener: InvalidationListener, stamp: int, name: str = "doc", timeout: float = 10.0
) -> float:
    """How long until ``stamp`` is no longer current for the key ``name``."""
    return seconds_until(lambda: not listener.is_current(key(listener, name), stamp), timeout)


# -- writes ----------------------------------------------------------------------------------


def test_a_set_by_another_client_makes_the_key_stale_within_50_ms_p99(
    listener: InvalidationListener, server: servers.Server
) -> None:
    writer = server.client(db=9)
    delays = []
    for n in range(200):
        stamp = current_stamp(listener)
        assert listener.is_current(key(listener), stamp)
        started = time.monotonic()
        writer.set(key(listener), n)
        delays.append(seconds_until_stale(listener, stamp))
        delays[-1] += time.monotonic() - started - delays[-1]
    p99 = statistics.quantiles(delays, n=100)[98]
    assert p99 < 0.050, f"p99 {p99 * 1000:.1f} ms"


def test_only_the_written_key_goes_stale(
    listener: InvalidationListener, server: servers.Server
) -> None:
    stamp = current_stamp(listener)
    server.client(db=9).set(key(listener, "a"), 1)
    seconds_until_stale(listener, stamp, "a")
    assert listener.is_current(key(listener, "b"), stamp)
    # A stamp taken after the write is current for the written key again.
    later = listener.stamp()
    assert later is not None and listener.is_current(key(listener, "a"), later)


def test_expiry_and_deletion_invalidate_too(
    listener: InvalidationListener, server: servers.Server
) -> None:
    writer = server.client(db=9)
    writer.set(key(listener, "gone"), 1)
    writer.set(key(listener, "expiring"), 1, px=50)
    stamp = current_stamp(listener)
    writer.delete(key(listener, "gone"))
    seconds_until_stale(listener, stamp, "gone")
    seconds_until_stale(listener, stamp, "expiring", timeout=2)


def test_keys_outside_the_prefix_are_never_current(
    listener: InvalidationListener, server: servers.Server
) -> None:
    assert listener.prefix == make_key("site", "")
    assert listener.prefix.endswith(":site:")
    stamp = current_stamp(listener)
    assert not listener.is_current("someone-else:site:doc", stamp)
    # Tokens are not tracked: writing them pushes nothing, and their keys are never current.
    token = make_key("token", "purpose", "digest")
    server.client(db=9).set(token, 1)
    server.client(db=9).set(key(listener), 1)
    seconds_until_stale(listener, stamp)
    assert token not in listener._invalidated
    assert not listener.is_current(token, stamp)


def test_flushdb_makes_every_key_stale(
    listener: InvalidationListener, server: servers.Server
) -> None:
    stamp = current_stamp(listener)
    server.client(db=9).flushdb()
    seconds_until_stale(listener, stamp, "never-written")
    assert listener.live  # a flush is not a failure
    fresh = listener.stamp()
    assert fresh is not None and listener.is_current(key(listener, "never-written"), fresh)


def test_remembered_keys_are_bounded(
    listener: InvalidationListener, server: servers.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "MAX_REMEMBERED_KEYS", 50)
    stamp = current_stamp(listener)
    writer = server.client(db=9)
    writer.mset({key(listener, str(n)): n for n in range(120)})
    seconds_until_stale(listener, stamp, "119")
    assert len(listener._invalidated) <= 50
    # Forgetting keys made every older stamp stale, not current.
    assert not listener.is_current(key(listener, "untouched"), stamp)


def test_is_current_sends_nothing_to_redis(
    listener: InvalidationListener, server: servers.Server
) -> None:
    probe_client = server.client()
    probe_client.ping()

    def commands() -> dict[str, int]:
        stats = probe_client.info("commandstats")
        return {
            name: int(value["calls"])
            for name, value in stats.items()
            if name not in {"cmdstat_info", "cmdstat_ping"}
        }

    stamp = current_stamp(listener)
    before = commands()
    for _ in range(20_000):
        assert listener.is_current(key(listener), stamp)
    assert commands() == before


# -- failures ---------------------------------------------------------------------------------


def assert_recovers(listener: InvalidationListener, old_stamp: int) -> None:
    assert listener.wait_live(10)
    assert not listener.is_current(key(listener), old_stamp)
    fresh = listener.stamp()
    assert fresh is not None and listener.is_current(key(listener), fresh)


def assert_stale_within_the_heartbeat(listener: InvalidationListener, stamp: int) -> None:
    waited = seconds_until_stale(listener, stamp)
    assert waited <= HEARTBEAT + 0.05, waited


def test_a_killed_server_makes_stamps_stale_at_once_and_a_restart_recovers(
    listener: InvalidationListener, server: servers.Server, started: servers.Processes
) -> None:
    stamp = current_stamp(listener)
    server.kill()
    assert seconds_until_stale(listener, stamp) < 0.1
    assert listener.stamp() is None
    started.restart(server)
    assert listener.wait_live(1)
    assert_recovers(listener, stamp)


def test_a_paused_server_makes_stamps_stale_within_the_heartbeat(
    listener: InvalidationListener, server: servers.Server
) -> None:
    stamp = current_stamp(listener)
    server.process.send_signal(signal.SIGSTOP)
    try:
        assert_stale_within_the_heartbeat(listener, stamp)
        assert listener.stamp() is None
    finally:
        server.process.send_signal(signal.SIGCONT)
    assert_recovers(listener, stamp)


def test_an_unanswered_heartbeat_makes_stamps_stale(
    listener: InvalidationListener, server: servers.Server
) -> None:
    stamp = current_stamp(listener)
    # CLIENT PAUSE ALL holds every client's commands, PING included; the process runs on.
    server.client().execute_command("CLIENT", "PAUSE", str(int(HEARTBEAT * 3000)), "ALL")
    assert_stale_within_the_heartbeat(listener, stamp)
    assert_recovers(listener, stamp)


def test_a_cut_tracking_connection_makes_stamps_stale_and_reconnects(
    listener: InvalidationListener, server: servers.Server
) -> None:
    stamp = current_stamp(listener)
    admin = server.client()
    tracked = [c for c in admin.client_list() if c.get("name") == "keel-tracking"]
    assert len(tracked) == 1
    assert "t" in tracked[0]["flags"] and "B" in tracked[0]["flags"]  # tracking, broadcast
    admin.client_kill_filter(_id=tracked[0]["id"])
    assert seconds_until_stale(listener, stamp) < 0.1
    assert listener.wait_live(1)
    assert_recovers(listener, stamp)
    assert len([c for c in admin.client_list() if c.get("name") == "keel-tracking"]) == 1


def test_a_write_during_an_outage_is_not_missed(
    listener: InvalidationListener, server: servers.Server
) -> None:
    stamp = current_stamp(listener)
    admin = server.client()
    tracked = next(c for c in admin.client_list() if c.get("name") == "keel-tracking")
    admin.client_kill_filter(_id=tracked["id"])
    admin.execute_command("SELECT", "9")
    admin.set(key(listener), "written while nobody listened")
    # The listener thread may not have seen the cut yet (a loaded machine): until it has, the
    # listener is still live on its old connection.
    seconds_until_stale(listener, stamp)
    assert listener.wait_live(10)
    assert not listener.is_current(key(listener), stamp)


# -- refused ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("renamed", "reason"),
    [("HELLO", "does not speak RESP3"), ("CLIENT", "refused CLIENT TRACKING")],
)
def test_a_server_refusing_tracking_is_reported_never_live(
    started: servers.Processes, renamed: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Redis before 6 has no HELLO; a proxy or rename-command can hide CLIENT.
    server = started.start("--rename-command", renamed, "")
    with override_settings(KEEL=tracking_settings(server)):
        found = get_listener()
        assert found is not None
        servers.wait_for(lambda: found.refused is not None, 5, "the refusal")
        assert reason in (found.refused or "")
        assert found.stamp() is None
        assert not found.wait_live(0.2)
        assert reason in (probe() or "")
        assert len([r for r in caplog.records if "keel.W005" in r.getMessage()]) == 1
    reset_listener()


def test_a_server_that_refused_is_asked_again(
    started: servers.Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "REFUSED_RETRY", 0.2)
    server = started.start("--rename-command", "CLIENT", "")
    with override_settings(KEEL=tracking_settings(server)):
        found = get_listener()
        assert found is not None
        servers.wait_for(lambda: found.refused is not None, 5, "the refusal")
        started.restart(server)  # the same address, now without the rename
        assert found.wait_live(5)
        assert found.refused is None
    reset_listener()


def test_probe_is_silent_for_a_server_that_tracks_and_for_none(
    server: servers.Server, started: servers.Processes
) -> None:
    with override_settings(KEEL=tracking_settings(server)):
        assert probe() is None
    server.kill()
    with override_settings(KEEL=tracking_settings(server)):
        assert probe() is None  # unreachable is not "refuses": reads report that themselves


def test_a_password_protected_server_is_tracked(started: servers.Processes) -> None:
    server = started.start("--requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{server.port}/9"
    with override_settings(KEEL={**tracking_settings(server), "REDIS_URL": url}):
        found = get_listener()
        assert found is not None and found.wait_live(5), found.refused
        stamp = found.stamp()
        assert stamp is not None
        server.client(db=9, password="s3cret").set(key(found), 1)
        seconds_until(lambda: not found.is_current(key(found), stamp), timeout=1)
    reset_listener()
    wrong = f"redis://:wrong@127.0.0.1:{server.port}/9"
    with override_settings(KEEL={**tracking_settings(server), "REDIS_URL": wrong}):
        found = get_listener()
        assert found is not None and not found.wait_live(0.5)
        assert found.refused is None  # a configuration error, not a refusal of tracking
    reset_listener()


def test_tls_is_refused_without_connecting() -> None:
    # Nothing listens there: the refusal comes from the URL alone.
    with override_settings(KEEL={"REDIS_URL": "rediss://127.0.0.1:1/0"}):
        assert "TLS" in (probe() or "")


def test_a_unix_socket_url_is_tracked(started: servers.Processes, tmp_path: Any) -> None:
    path = tmp_path / "redis.sock"
    server = started.start("--unixsocket", str(path), "--unixsocketperm", "700")
    with override_settings(KEEL={**tracking_settings(server), "REDIS_URL": f"unix://{path}?db=9"}):
        found = get_listener()
        assert found is not None and found.wait_live(5), found.refused
        stamp = found.stamp()
        assert stamp is not None
        server.client(db=9).set(key(found), 1)
        seconds_until(lambda: not found.is_current(key(found), stamp), timeout=1)
    reset_listener()


# -- lifecycle --------------------------------------------------------------------------------


def test_no_listener_without_redis_or_with_tracking_off(server: servers.Server) -> None:
    with override_settings(KEEL={}):
        assert get_listener() is None
    with override_settings(KEEL=tracking_settings(server, SITE_SETTINGS_TRACKING=False)):
        assert get_listener() is None


def test_one_listener_per_process_across_threads(server: servers.Server) -> None:
    with override_settings(KEEL=tracking_settings(server)):
        found: list[InvalidationListener | None] = []
        barrier = threading.Barrier(8)

        def grab() -> None:
            barrier.wait()
            found.append(get_listener())

        threads = [threading.Thread(target=grab) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(found) == 8 and found[0] is not None
        assert all(each is found[0] for each in found)
        assert found[0].wait_live(5)
        tracked = [c for c in server.client().client_list() if c.get("name") == "keel-tracking"]
        assert len(tracked) == 1
    reset_listener()


def test_a_changed_setting_replaces_the_listener(
    listener: InvalidationListener, server: servers.Server
) -> None:
    with override_settings(KEEL=tracking_settings(server)):
        other = get_listener()
        assert other is not None and other is not listener
        assert not listener.live  # closed, at once, when the setting changed
        assert other.wait_live(5)
        # The old listener's thread closed its connection: one is left, the new one's.
        admin = server.client()
        servers.wait_for(
            lambda: len([c for c in admin.client_list() if c.get("name") == "keel-tracking"]) == 1,
            5,
            "the old connection to close",
        )
    reset_listener()


def test_a_forked_child_starts_its_own_listener(
    listener: InvalidationListener, server: servers.Server
) -> None:
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that the listener's thread is not copied: that is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        outcome = "error"
        try:
            mine = get_listener()
            if mine is None or mine is listener:
                outcome = "inherited"
            elif not mine.wait_live(5):
                outcome = "never live"
            else:
                stamp = mine.stamp()
                assert stamp is not None
                server.client(db=9).set(key(mine), "from the child")
                seconds_until(lambda: not mine.is_current(key(mine), stamp), timeout=5)
                outcome = "ok"
        finally:
            os.write(write_end, outcome.encode())
            os._exit(0)
    os.close(write_end)
    _pid, status = os.waitpid(pid, 0)
    outcome = os.read(read_end, 100).decode()
    os.close(read_end)
    assert outcome == "ok"
    assert status == 0
    tracked = [c for c in server.client().client_list() if c.get("name") == "keel-tracking"]
    assert len(tracked) == 1  # the child's connection went with it; the parent's is still up
    assert listener.live


def test_reads_of_the_real_prefix_are_tracked_by_default(redis_url: str) -> None:
    """keel's own Redis: the default heartbeat and the test run's prefix."""
    with override_settings(KEEL={"REDIS_URL": redis_url, "KEY_PREFIX": "trk-default"}):
        found = get_listener()
        assert found is not None
        assert found.heartbeat == 1.0
        assert found.prefix == "trk-default:site:"
        assert found.wait_live(5)
        stamp = found.stamp()
        assert stamp is not None
        writer = redis.Redis.from_url(redis_url)
        writer.set("trk-default:site:x", 1)
        seconds_until(lambda: not found.is_current("trk-default:site:x", stamp))
        writer.delete("trk-default:site:x")
        writer.close()
    reset_listener()
