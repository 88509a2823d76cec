"""What single use owes to how Redis keeps its data: real servers, restarted and paused.

The documented behaviour (docs/tokens.md, "When Redis can give a token twice"): with Redis'
default persistence a restart reloads the last snapshot, and a token consumed after it is valid
again; with ``appendonly yes`` and ``appendfsync always`` it stays used; ``wait_replicas``
refuses a consume that the replicas did not acknowledge.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from keel.tokens import JsonActionTokenManager, RedisTokenStore, TokenStoreUnavailable
from keel.tokens.checks import check_token_persistence
from tests.conftest import use_server
from tests.reliability import servers

pytestmark = [pytest.mark.redis, pytest.mark.django_db]


def ids() -> list[str]:
    return [message.id for message in check_token_persistence()]


def test_a_restart_from_an_older_snapshot_makes_a_consumed_token_valid_again(
    started: servers.Processes, settings: Any
) -> None:
    server = started.start()  # Redis' persistence as shipped: snapshots, no append-only file
    use_server(settings, server)
    manager = JsonActionTokenManager(prefix="persist:rdb")
    token = manager.create_token({"n": 1})
    server.client().save()  # the snapshot Redis would take on its own schedule
    assert manager.consume_token(token) == {"n": 1}
    assert manager.consume_token(token) is None
    assert "keel.W008" in ids()

    restarted = started.restart(server, keep_files=True)
    assert restarted.client().dbsize() > 0  # it loaded the snapshot
    assert manager.consume_token(token) == {"n": 1}  # used once already, and accepted again


def test_with_an_always_synced_append_only_file_a_consumed_token_stays_used(
    started: servers.Processes, settings: Any
) -> None:
    durable = ("--appendonly", "yes", "--appendfsync", "always")
    server = started.start(*durable)
    use_server(settings, server)
    manager = JsonActionTokenManager(prefix="persist:aof")
    token = manager.create_token({"n": 1})
    kept = manager.create_token({"n": 2})
    server.client().save()  # an older snapshot exists too; the append-only file wins
    assert manager.consume_token(token) == {"n": 1}
    assert ids() == []

    started.restart(server, *durable, keep_files=True)
    assert manager.consume_token(token) is None
    assert manager.consume_token(kept) == {"n": 2}


def test_wait_replicas_refuses_a_consume_no_replica_acknowledged(
    started: servers.Processes, settings: Any
) -> None:
    master = started.start()
    replica = started.start("--replicaof", "127.0.0.1", str(master.port))
    servers.wait_for(
        lambda: replica.client().info("replication")["master_link_status"] == "up",
        20,
        "the replica's link to its master",
    )
    use_server(settings, master)
    store = RedisTokenStore(wait_replicas=1, wait_timeout_ms=100)
    manager = JsonActionTokenManager(prefix="persist:wait", store=store)
    token = manager.create_token({"n": 1})
    assert manager.consume_token(token) == {"n": 1}  # the replica acknowledged it

    token = manager.create_token({"n": 2})
    replica.process.send_signal(signal.SIGSTOP)  # alive, connected, and silent
    try:
        with pytest.raises(TokenStoreUnavailable, match="0 of 1 Redis replicas acknowledged"):
            manager.consume_token(token)
    finally:
        replica.process.send_signal(signal.SIGCONT)
    assert manager.consume_token(token) is None  # spent on the master all the same


@pytest.mark.parametrize(
    "options", [{"wait_replicas": -1}, {"wait_replicas": True}, {"wait_timeout_ms": 0}]
)
def test_bad_wait_options_are_value_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be an int of at least"):
        RedisTokenStore(**options)
