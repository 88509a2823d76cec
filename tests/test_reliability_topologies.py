"""keel on real Redis topologies started by the test: a 3-master Cluster and a Sentinel
group (master, replica, 3 Sentinels), including a failover under token traffic."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis.exceptions import RedisClusterException

from keel.redis import get_redis, health_check, key_slot, make_key, reset_clients, topology
from keel.site.cache import request_scope, reset_process_state
from keel.site.tracking import InvalidationListener, get_listener, reset_listener
from keel.tokens import (
    JsonActionTokenManager,
    OneTimeCodeManager,
    TokenStoreUnavailable,
    TooManyCodes,
)
from tests.conftest import Consumed, current_stamp, redis_processes
from tests.reliability import servers
from tests.testapp.models.site import SiteSettings


@pytest.fixture(scope="module")
def cluster() -> Iterator[servers.Cluster]:
    with redis_processes() as started:
        yield servers.start_cluster(started)


@pytest.fixture
def sentinel_group() -> Iterator[servers.SentinelGroup]:
    with redis_processes() as started:
        yield servers.start_sentinel_group(started)


@pytest.fixture
def on_cluster(cluster: servers.Cluster, settings: Any) -> Iterator[servers.Cluster]:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": cluster.url, "TOKEN_STORE": "redis"}
    yield cluster
    reset_clients()


def keys_per_node(cluster: servers.Cluster) -> list[int]:
    return [int(node.client().dbsize()) for node in cluster.masters]


def command_counts(probes: list[redis.Redis]) -> Counter[str]:
    """Commands executed by the nodes so far (by name), without the probes' own INFO.

    The probes are connected once beforehand, so their handshake is not counted.
    """
    counts: Counter[str] = Counter()
    for probe in probes:
        for name, stats in probe.info("commandstats").items():
            if name != "cmdstat_info":
                counts[name.removeprefix("cmdstat_")] += int(stats["calls"])
    return counts


# -- Cluster -----------------------------------------------------------------------------------


def test_cluster_url_builds_a_cluster_client(on_cluster: servers.Cluster) -> None:
    described = topology()
    assert described.kind == "cluster"
    assert len(described.nodes) == 3
    assert isinstance(get_redis(), redis.cluster.RedisCluster)
    assert health_check().ok


def test_tokens_are_created_and_consumed_once_through_the_cluster(
    on_cluster: servers.Cluster,
) -> None:
    manager = JsonActionTokenManager(prefix="reliab:cluster")
    before = keys_per_node(on_cluster)
    tokens = {manager.create_token({"n": n}, subject=f"user-{n % 50}"): n for n in range(300)}
    grown = [after - b for after, b in zip(keys_per_node(on_cluster), before, strict=True)]
    # Token keys hash over the whole slot space: every master holds some.
    assert all(g > 0 for g in grown), grown
    live = {t: n for t, n in tokens.items() if manager.get_token_data(t) is not None}
    # One live token per subject: creating a new one for a subject revoked the previous one,
    # although the subject index and the tokens live in different slots.
    assert len(live) == 50
    for token, n in live.items():
        assert manager.consume_token(token) == {"n": n}
        assert manager.consume_token(token) is None
    assert manager.revoke_subject("user-1") == 0


def test_async_tokens_through_the_cluster(on_cluster: servers.Cluster) -> None:
    manager = JsonActionTokenManager(prefix="reliab:acluster")

    async def scenario() -> list[Any]:
        token = await manager.acreate_token({"a": 1}, subject="s")
        results = await asyncio.gather(*(manager.aconsume_token(token) for _ in range(10)))
        return list(results)

    results = asyncio.run(scenario())
    assert results.count({"a": 1}) == 1
    assert results.count(None) == 9


def test_one_time_codes_and_their_limits_through_the_cluster(on_cluster: servers.Cluster) -> None:
    codes = OneTimeCodeManager("reliab:ccodes")
    code = codes.issue_code("ada", {"n": 1})
    assert codes.verify_code("ada", code) == {"n": 1}
    code = codes.issue_code("ada")
    for _ in range(codes.max_attempts):
        assert codes.verify_code("ada", str((int(code) + 1) % 10**6).zfill(6)) is None
    assert codes.verify_code("ada", code) is None
    codes.issue_code("ada")  # the third within the window
    with pytest.raises(TooManyCodes):
        codes.issue_code("ada")

    async def scenario() -> Any:
        issued = await codes.aissue_code("bob", {"n": 2})
        return await codes.averify_code("bob", issued)

    assert asyncio.run(scenario()) == {"n": 2}


def test_tagged_keys_share_a_slot_and_serve_multi_key_commands(
    on_cluster: servers.Cluster,
) -> None:
    tagged = [make_key("doc", str(n), tag="reliab") for n in range(20)]
    assert len({key_slot(k) for k in tagged}) == 1
    client = get_redis()
    client.mset(dict.fromkeys(tagged, "v"))
    assert client.mget(tagged) == [b"v"] * 20
    untagged = [make_key("doc", str(n)) for n in range(20)]
    assert len({key_slot(k) for k in untagged}) > 1
    with pytest.raises(RedisClusterException):
        client.mget(untagged)
    client.delete(*tagged)


@pytest.mark.django_db(transaction=True)
def test_site_settings_are_read_through_the_cluster_with_one_command(
    on_cluster: servers.Cluster, settings: Any
) -> None:
    # The store's path (client tracking on a Cluster is tested with the listener's tests).
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0, "SITE_SETTINGS_TRACKING": False}
    reset_process_state()
    row = SiteSettings.load()
    row.site_name = "On the cluster"
    row.save()
    with request_scope():
        assert SiteSettings.load().site_name == "On the cluster"  # fills the cluster
    probes = [node.client() for node in on_cluster.masters]
    before = command_counts(probes)

    with CaptureQueriesContext(connection) as queries, request_scope():
        assert SiteSettings.load().site_name == "On the cluster"
    assert len(queries) == 0
    executed = command_counts(probes) - before
    # One command from keel; the server also counts the GETs its Lua script ran.
    assert executed["evalsha"] == 1
    assert set(executed) <= {"evalsha", "get"} and executed["get"] <= 2, executed
    row.site_name = "Changed"
    row.save()
    with request_scope():
        assert SiteSettings.load().site_name == "Changed"
    reset_process_state()


@pytest.mark.django_db(transaction=True)
def test_warm_site_settings_reads_send_nothing_to_the_cluster_with_tracking(
    on_cluster: servers.Cluster, settings: Any
) -> None:
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    reset_process_state()
    listener = get_listener()
    assert listener is not None and listener.wait_live(10), listener.refused
    row = SiteSettings.load()
    row.site_name = "Tracked on the cluster"
    row.save()
    # The save's own publication may reach the listener after the first copy's stamp and
    # retire it: read again once that invalidation has had time to arrive.
    for _ in range(2):
        with request_scope():
            assert SiteSettings.load().site_name == "Tracked on the cluster"
        time.sleep(0.1)
    probes = [node.client() for node in on_cluster.masters]
    before = command_counts(probes)

    for _ in range(20):
        with CaptureQueriesContext(connection) as queries, request_scope():
            assert SiteSettings.load().site_name == "Tracked on the cluster"
        assert len(queries) == 0
    executed = command_counts(probes) - before
    # Only the listener's heartbeat reached the masters: no read did.
    assert set(executed) <= {"ping", "cluster|slots"}, executed
    row.site_name = "Changed on the cluster"
    row.save()
    with request_scope():
        assert SiteSettings.load().site_name == "Changed on the cluster"
    reset_process_state()
    reset_listener()


# -- Sentinel ----------------------------------------------------------------------------------


@pytest.fixture
def on_sentinel(
    sentinel_group: servers.SentinelGroup, settings: Any
) -> Iterator[servers.SentinelGroup]:
    settings.KEEL = {
        **settings.KEEL,
        "REDIS_URL": sentinel_group.url(),
        "TOKEN_STORE": "redis",
        "REDIS_OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    }
    yield sentinel_group
    reset_clients()


def test_tokens_through_sentinel_reach_the_master_it_names(
    on_sentinel: servers.SentinelGroup,
) -> None:
    assert topology().kind == "sentinel"
    manager = JsonActionTokenManager(prefix="reliab:sentinel")
    token = manager.create_token({"via": "sentinel"})
    master = on_sentinel.master.client(db=9)
    assert master.dbsize() == 1
    assert on_sentinel.master_port() == on_sentinel.master.port
    assert manager.consume_token(token) == {"via": "sentinel"}
    assert manager.consume_token(token) is None
    assert master.dbsize() == 0


def test_sentinel_failover_during_token_traffic_consumes_no_token_twice(
    on_sentinel: servers.SentinelGroup,
) -> None:
    manager = JsonActionTokenManager(prefix="reliab:failover")
    pending = {manager.create_token({"n": n}): n for n in range(400)}
    # Replicated before the failover starts: these must each be consumed exactly once.
    on_sentinel.master.client().wait(1, 2000)
    consumed = Consumed(pending)
    errors: list[BaseException] = []
    created_during: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def consumer(seed: int) -> None:
        order = list(pending)
        random.Random(seed).shuffle(order)
        todo = order
        while todo and not stop.is_set():
            retry = []
            for token in todo:
                try:
                    payload = manager.consume_token(token)
                except TokenStoreUnavailable as exc:
                    with lock:
                        errors.append(exc)
                    retry.append(token)
                    time.sleep(0.01)
                    continue
                except BaseException as exc:  # anything else fails the test below
                    with lock:
                        errors.append(exc)
                    continue
                consumed.record(token, payload)
            todo = retry

    def creator() -> None:
        while not stop.is_set():
            try:
                created_during.append(manager.create_token({"late": True}))
            except TokenStoreUnavailable as exc:
                with lock:
                    errors.append(exc)
            time.sleep(0.002)

    threads = [threading.Thread(target=consumer, args=(seed,)) for seed in range(4)]
    threads.append(threading.Thread(target=creator))
    old_master = on_sentinel.master_port()
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    on_sentinel.sentinels[0].client().sentinel_failover(servers.SERVICE_NAME)
    servers.wait_for(
        lambda: on_sentinel.master_port() == on_sentinel.replica.port, 20, "the failover"
    )
    # Traffic resumes on the new master.
    servers.wait_for(lambda: health_check().ok, 20, "keel to reach the new master")
    token = manager.create_token({"after": "failover"})
    assert manager.consume_token(token) == {"after": "failover"}
    assert on_sentinel.master_port() != old_master
    for thread in threads[:-1]:
        thread.join(timeout=60)
    stop.set()
    threads[-1].join(timeout=10)
    unexpected = [e for e in errors if not isinstance(e, TokenStoreUnavailable)]
    assert unexpected == []
    assert max(consumed.values()) == 1, [t for t, c in consumed.items() if c > 1]
    assert set(consumed) == set(pending)  # none lost
    late = [manager.consume_token(t) for t in created_during]
    assert all(p in ({"late": True}, None) for p in late)
    assert all(manager.consume_token(t) is None for t in created_during)


# -- client tracking ---------------------------------------------------------------------------

TRACKING_HEARTBEAT = 0.3


def tracking_names(server: servers.Server) -> list[dict[str, Any]]:
    return [c for c in server.client().client_list() if c.get("name") == "keel-tracking"]


def stale_within(listener: InvalidationListener, key: str, stamp: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while listener.is_current(key, stamp):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)
    return True


def live_listener(settings: Any) -> InvalidationListener:
    """keel's listener, with the tests' heartbeat, once it is live."""
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_TRACKING_HEARTBEAT": TRACKING_HEARTBEAT}
    listener = get_listener()
    assert listener is not None
    assert listener.wait_live(10), listener.refused
    return listener


@pytest.fixture
def cluster_listener(on_cluster: servers.Cluster, settings: Any) -> Iterator[InvalidationListener]:
    yield live_listener(settings)
    reset_listener()


def test_tracking_listens_to_every_cluster_master(
    on_cluster: servers.Cluster, cluster_listener: InvalidationListener
) -> None:
    assert [len(tracking_names(node)) for node in on_cluster.masters] == [1, 1, 1]
    client = get_redis()
    # Keys spread over every master: a write to any of them reaches the listener.
    keys = [make_key("site", f"k{n}") for n in range(30)]
    owners = {
        client.nodes_manager.get_node_from_slot(key_slot(k)).port  # type: ignore[attr-defined]
        for k in keys
    }
    assert len(owners) == 3
    for key in keys:
        stamp = cluster_listener.stamp()
        assert stamp is not None and cluster_listener.is_current(key, stamp)
        client.set(key, "v")
        assert stale_within(cluster_listener, key, stamp, 0.05), key
    client.delete(*keys[:1])


def test_tracking_is_not_live_while_one_cluster_master_is_unheard(
    on_cluster: servers.Cluster, cluster_listener: InvalidationListener
) -> None:
    stamp = cluster_listener.stamp()
    assert stamp is not None
    [tracked] = tracking_names(on_cluster.masters[1])
    on_cluster.masters[1].client().client_kill_filter(_id=tracked["id"])
    assert stale_within(cluster_listener, make_key("site", "any"), stamp, 0.1)
    assert cluster_listener.wait_live(10)
    assert not cluster_listener.is_current(make_key("site", "any"), stamp)
    assert [len(tracking_names(node)) for node in on_cluster.masters] == [1, 1, 1]


def test_tracking_follows_a_resharding_to_a_new_master(settings: Any) -> None:
    with redis_processes() as started:
        cluster = servers.start_cluster(started)
        settings.KEEL = {
            **settings.KEEL,
            "REDIS_URL": cluster.url,
            "SITE_SETTINGS_TRACKING_HEARTBEAT": TRACKING_HEARTBEAT,
        }
        listener = get_listener()
        assert listener is not None and listener.wait_live(10)
        stamp = current_stamp(listener)
        newcomer = started.start(
            *servers.CLUSTER_NODE, "--cluster-node-timeout", "2000",
            port=servers.free_port(with_bus=True),
        )  # fmt: skip
        source = cluster.masters[0]
        admin = source.client()
        admin.execute_command("CLUSTER", "MEET", "127.0.0.1", str(newcomer.port))
        servers.wait_for(
            lambda: all(
                len(node.client().cluster("NODES")) == 4 for node in [*cluster.masters, newcomer]
            ),
            20,
            "every node to know the newcomer",
        )
        # Move one (empty) slot of the first master to the newcomer: no connection is cut.
        key = make_key("site", "moved")
        slot = key_slot(key)
        owner = next(m for m in cluster.masters if slot in owned_slots(m))
        owner_id = owner.client().execute_command("CLUSTER", "MYID").decode()
        new_id = newcomer.client().execute_command("CLUSTER", "MYID").decode()
        newcomer.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", owner_id)
        owner.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", new_id)
        for node in (newcomer, owner):
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", new_id)
        # Seen at the next heartbeat (a quarter of the interval), with room for a busy machine.
        assert stale_within(listener, key, stamp, TRACKING_HEARTBEAT + 0.2)
        servers.wait_for(lambda: len(tracking_names(newcomer)) == 1, 10, "a link to the newcomer")
        assert listener.wait_live(10)
        fresh = listener.stamp()
        assert fresh is not None
        servers.wait_for(
            lambda: newcomer.client().cluster("INFO")["cluster_state"] == "ok", 20, "the newcomer"
        )
        newcomer.client().set(key, "on the newcomer")
        assert stale_within(listener, key, fresh, 0.05)
        reset_listener()
        reset_clients()


def owned_slots(node: servers.Server) -> set[int]:
    myid = node.client().execute_command("CLUSTER", "MYID")
    owned: set[int] = set()
    for start, end, master, *_replicas in node.client().execute_command("CLUSTER", "SLOTS"):
        if master[2] == myid:
            owned.update(range(int(start), int(end) + 1))
    return owned


def test_tracking_survives_a_sentinel_failover(
    on_sentinel: servers.SentinelGroup, settings: Any
) -> None:
    listener = live_listener(settings)
    assert len(tracking_names(on_sentinel.master)) == 1
    # Plus one connection to one Sentinel, asked for the master at every heartbeat.
    assert sum(len(tracking_names(s)) for s in on_sentinel.sentinels) == 1
    key = make_key("site", "doc")
    stamp = current_stamp(listener)
    on_sentinel.sentinels[0].client().sentinel_failover(servers.SERVICE_NAME)
    servers.wait_for(
        lambda: on_sentinel.master_port() == on_sentinel.replica.port, 20, "the failover"
    )
    # The old master still runs (and takes writes) until the Sentinels demote it, seconds
    # later; the listener asks a Sentinel at every heartbeat and leaves it at once.
    assert stale_within(listener, key, stamp, TRACKING_HEARTBEAT + 0.2)
    servers.wait_for(
        lambda: len(tracking_names(on_sentinel.replica)) == 1, 20, "a link to the new master"
    )
    assert listener.wait_live(10)
    assert tracking_names(on_sentinel.master) == []
    fresh = listener.stamp()
    assert fresh is not None and listener.is_current(key, fresh)
    servers.wait_for(lambda: health_check().ok, 20, "keel to reach the new master")
    get_redis().set(key, "written on the new master")
    assert stale_within(listener, key, fresh, 0.05)
    reset_listener()


def test_tracking_follows_the_sentinels_when_the_master_dies(
    on_sentinel: servers.SentinelGroup, settings: Any
) -> None:
    listener = live_listener(settings)
    key = make_key("site", "doc")
    stamp = current_stamp(listener)
    on_sentinel.master.kill()
    assert stale_within(listener, key, stamp, 0.1)
    # Not live while the Sentinels still name the dead master; live on the promoted replica.
    servers.wait_for(
        lambda: on_sentinel.master_port() == on_sentinel.replica.port, 30, "the failover"
    )
    assert listener.wait_live(10)
    assert len(tracking_names(on_sentinel.replica)) == 1
    fresh = listener.stamp()
    assert fresh is not None and not listener.is_current(key, stamp)
    servers.wait_for(lambda: health_check().ok, 20, "keel to reach the new master")
    get_redis().set(key, "written on the promoted replica")
    assert stale_within(listener, key, fresh, 0.05)
    reset_listener()
