"""Action tokens: create + consume throughput of keel's stores against raw redis-py.

    .venv/bin/python bench/tokens.py [--pairs 2000] [--repeats 7] [--chunk 50]

Contenders, each creating then consuming ``--pairs`` tokens per repeat. A loopback round
trip drifts over seconds with the machine's load, so the contenders are interleaved in small
chunks (``--chunk`` pairs each, the order rotating every chunk): every contender sees the same
moments. Ratios to the floor are medians of per-chunk ratios (each keel chunk against the floor
chunk run next to it), and CPU time (``time.process_time``) is measured per chunk too:

- ``raw redis-py SET+GETDEL`` (the floor): a fresh ``token_urlsafe`` key, ``SET … NX EX``,
  ``GETDEL``; no hashing, no JSON, no checks.
- ``keel Redis store`` and its asyncio twin: ``create_token`` + ``consume_token``.
- ``naive get-then-delete``: the raw token as the key, ``GET`` then ``DEL`` (the anchor's
  shape; it is not even correct under concurrency).
- ``keel database store``: the ``ActionToken`` table on PostgreSQL (``DELETE … RETURNING``).

The CPU ratio (keel's client CPU per pair over the floor's) says how much of keel's cost is
its own work (hashing, JSON, checks) rather than waiting on the network. Round trips per
consume are counted with a redis-py connection class that counts replies.
Needs Redis (``--redis-url``) and PostgreSQL (``--pg-host``, user postgres, trust auth).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio

from harness import (
    Report,
    clean_redis,
    database,
    interleave,
    key_prefix,
    load_average,
    parser,
    setup_django,
    versions,
)

PAYLOAD: dict[str, Any] = {"user_id": 123456, "email": "ada@example.com", "action": "confirm"}


class NaiveManager:
    """The baseline: token as the key, peek-style GET then DEL to "consume"."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def create_token(self, payload: dict[str, Any]) -> str:
        token = secrets.token_urlsafe(32)
        self.client.set(f"{self.prefix}:{token}", json.dumps(payload), ex=3600)
        return token

    def consume_token(self, token: str) -> dict[str, Any] | None:
        raw = self.client.get(f"{self.prefix}:{token}")
        self.client.delete(f"{self.prefix}:{token}")
        return None if raw is None else dict(json.loads(raw))


class ReplyCountingConnection(redis.Connection):
    """A redis-py connection that counts the replies it reads: one per round trip."""

    replies = 0

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        type(self).replies += 1
        return super().read_response(*args, **kwargs)


def round_trips(run: Callable[[], Any]) -> int:
    before = ReplyCountingConnection.replies
    run()
    return ReplyCountingConnection.replies - before


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--pairs", type=int, default=2000)
    options.add_argument("--repeats", type=int, default=7)
    options.add_argument("--chunk", type=int, default=50, help="pairs per interleaved chunk")
    args = options.parse_args()
    prefix = key_prefix()
    setup_django(
        {"default": database("postgres", "keel_bench_tokens", args.pg_host)},
        KEEL={"REDIS_URL": args.redis_url, "KEY_PREFIX": prefix},
    )
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    from keel.models import ActionToken
    from keel.redis import get_async_redis, get_redis
    from keel.tokens import JsonActionTokenDatabaseManager, JsonActionTokenRedisManager

    call_command("migrate", "keel", verbosity=0)
    client = get_redis()
    raw = redis.Redis.from_url(args.redis_url)
    naive = NaiveManager(raw, f"{prefix}:naive")
    keel_redis = JsonActionTokenRedisManager(prefix="bench:confirm")
    keel_db = JsonActionTokenDatabaseManager(prefix="bench:confirm")
    value = json.dumps(PAYLOAD)
    chunk = max(1, min(args.chunk, args.pairs))
    chunks = max(1, args.pairs // chunk) * args.repeats

    def raw_floor() -> None:
        for _ in range(chunk):
            key = f"{prefix}:raw:{secrets.token_urlsafe(32)}"
            raw.set(key, value, nx=True, ex=3600)
            assert raw.getdel(key) is not None

    # One event loop for every asyncio chunk: its clients (and keel's, one pool per loop)
    # keep their connections from chunk to chunk, as in a long-running ASGI worker.
    loop = asyncio.new_event_loop()
    async_raw = redis.asyncio.Redis.from_url(args.redis_url)

    def raw_async_floor() -> None:
        async def run() -> None:
            for _ in range(chunk):
                key = f"{prefix}:raw:{secrets.token_urlsafe(32)}"
                await async_raw.set(key, value, nx=True, ex=3600)
                assert await async_raw.getdel(key) is not None

        loop.run_until_complete(run())

    def pairs(manager: Any) -> Callable[[], None]:
        def run() -> None:
            for _ in range(chunk):
                assert manager.consume_token(manager.create_token(PAYLOAD)) is not None

        return run

    def keel_redis_async_round() -> None:
        async def run() -> None:
            for _ in range(chunk):
                token = await keel_redis.acreate_token(PAYLOAD)
                assert await keel_redis.aconsume_token(token) is not None

        loop.run_until_complete(run())

    sync_floor, async_floor = "raw redis-py SET+GETDEL (floor)", "raw redis-py asyncio (floor)"
    contenders: dict[str, Callable[[], None]] = {
        sync_floor: raw_floor,
        "keel Redis store": pairs(keel_redis),
        "naive get-then-delete (baseline)": pairs(naive),
        "keel database store (PostgreSQL)": pairs(keel_db),
        async_floor: raw_async_floor,
        "keel Redis store, asyncio": keel_redis_async_round,
    }
    load_before = load_average()
    timings = interleave(contenders, chunks, per=chunk, warmup=True)

    async def close() -> None:
        await async_raw.aclose()
        await get_async_redis().aclose()

    loop.run_until_complete(close())
    loop.close()

    # Round trips, counted on separate clients so the timed runs carry no instrumentation.
    counting = redis.Redis.from_url(args.redis_url, connection_class=ReplyCountingConnection)
    counting.ping()  # the connection's handshake is not part of what is counted
    counted_keel = {**settings.KEEL, "REDIS_OPTIONS": {"connection_class": ReplyCountingConnection}}
    with override_settings(KEEL=counted_keel):
        get_redis().ping()
        token = keel_redis.create_token(PAYLOAD)
        create = round_trips(lambda: keel_redis.create_token(PAYLOAD))
        consume = round_trips(lambda: keel_redis.consume_token(token))
        naive_consume = round_trips(
            lambda: NaiveManager(counting, f"{prefix}:naive").consume_token("x" * 43)
        )
    trips = dict.fromkeys(contenders, 1) | {
        "keel Redis store": consume,
        "keel Redis store, asyncio": consume,
        "naive get-then-delete (baseline)": naive_consume,
    }
    rows = []
    for name in contenders:
        floor = async_floor if "asyncio" in name else sync_floor
        median = timings.median(name)
        cpu_ratio = timings.cpu_median(name) / timings.cpu_median(floor)
        rows.append(
            [
                name,
                1 / median,
                median * 1e6,
                timings.paired(name, sync_floor),
                timings.paired(name, async_floor),
                timings.cpu_median(name) * 1e6,
                cpu_ratio,
                trips[name],
            ]
        )
    postgres = ".".join(map(str, connection.get_database_version()))
    report = Report("tokens.py")
    report.table(
        [
            "contender",
            "pairs/s|{:,.0f}",
            "µs per pair|{:.1f}",
            "vs sync floor|{:.0%}",
            "vs asyncio floor|{:.0%}",
            "client CPU µs per pair|{:.1f}",
            "CPU vs its floor|{:.2f}x",
            "round trips per consume|{}",
        ],
        rows,
        caption=f"{versions(f'redis-py {redis.__version__}')}, "
        f"Redis {client.info('server')['redis_version']}, PostgreSQL {postgres}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs; {chunk * chunks} create+consume pairs "
        f"per contender in {chunks} interleaved chunks of {chunk}; medians per chunk; load "
        f"average {load_before:.1f} before, {load_average():.1f} after",
    )
    ratio = timings.paired("keel Redis store", sync_floor)
    report.goal(
        "keel's Redis store at least 80% of the raw redis-py floor", f"{ratio:.0%}", ratio >= 0.8
    )
    report.goal("Consume is one round trip", str(consume), consume == 1)
    cpu_ratio = timings.cpu_median("keel Redis store") / timings.cpu_median(sync_floor)
    report.text(
        f"asyncio: {timings.paired('keel Redis store, asyncio', async_floor):.0%} of the asyncio "
        f"floor; client CPU {cpu_ratio:.2f}x the floor's; create is {create} round trip(s)."
    )
    report.data["tokens"] = {name: row[1] for name, row in zip(contenders, rows, strict=True)}
    clean_redis(args.redis_url, prefix)
    ActionToken.objects.filter(purpose="bench:confirm").delete()
    report.emit(args.json)


if __name__ == "__main__":
    main()
