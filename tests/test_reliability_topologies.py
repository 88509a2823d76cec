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
from keel.tokens import (
    JsonActionTokenManager,
    OneTimeCodeManager,
    TokenStoreUnavailable,
    TooManyCodes,
)
from tests.conftest import require_service
from tests.reliability import servers
from tests.testapp.models.site import SiteSettings


@pytest.fixture(scope="module")
def cluster() -> Iterator[servers.Cluster]:
    problem = servers.binaries_problem()
    if problem:
        require_service("redis-server", problem)
    with servers.processes() as started:
        yield servers.start_cluster(started)


@pytest.fixture
def sentinel_group() -> Iterator[servers.SentinelGroup]:
    problem = servers.binaries_problem()
    if problem:
        require_service("redis-server", problem)
    with servers.processes() as started:
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
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
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
    consumed: Counter[str] = Counter()
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
                if payload is not None:
                    assert payload == {"n": pending[token]}
                    with lock:
                        consumed[token] += 1
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
