"""Action tokens: create + consume throughput of keel's stores against raw redis-py, in
interleaved chunks of ``--chunk`` pairs; ratios to the floor are medians of per-chunk ratios."""

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

import harness
from cases import token_pairs
from harness import Report

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


def main() -> None:
    args = harness.options(__doc__, pairs=2000, repeats=7, chunk=50)
    prefix = harness.key_prefix()
    harness.setup_django(
        {"default": harness.database("postgres", "keel_bench_tokens", args.pg_host)},
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
    raw = redis.Redis.from_url(args.redis_url)
    keel_redis = JsonActionTokenRedisManager(prefix="bench:confirm")
    value = json.dumps(PAYLOAD)
    chunk = max(1, min(args.chunk, args.pairs))
    chunks = max(1, args.pairs // chunk) * args.repeats
    # One event loop for every asyncio chunk: its clients (and keel's, one pool per loop)
    # keep their connections from chunk to chunk, as in a long-running ASGI worker.
    loop = asyncio.new_event_loop()
    async_raw = redis.asyncio.Redis.from_url(args.redis_url)

    def raw_floor() -> None:
        for _ in range(chunk):
            key = f"{prefix}:raw:{secrets.token_urlsafe(32)}"
            raw.set(key, value, nx=True, ex=3600)
            assert raw.getdel(key) is not None

    async def raw_async_floor() -> None:
        for _ in range(chunk):
            key = f"{prefix}:raw:{secrets.token_urlsafe(32)}"
            await async_raw.set(key, value, nx=True, ex=3600)
            assert await async_raw.getdel(key) is not None

    async def keel_redis_async() -> None:
        for _ in range(chunk):
            token = await keel_redis.acreate_token(PAYLOAD)
            assert await keel_redis.aconsume_token(token) == PAYLOAD

    sync_floor, async_floor = "raw redis-py SET+GETDEL (floor)", "raw redis-py asyncio (floor)"
    contenders: dict[str, Callable[[], Any]] = {
        sync_floor: raw_floor,
        "keel Redis store": token_pairs(keel_redis, PAYLOAD, chunk),
        "naive get-then-delete (baseline)": token_pairs(
            NaiveManager(raw, f"{prefix}:naive"), PAYLOAD, chunk
        ),
        "keel database store (PostgreSQL)": token_pairs(
            JsonActionTokenDatabaseManager(prefix="bench:confirm"), PAYLOAD, chunk
        ),
        async_floor: lambda: loop.run_until_complete(raw_async_floor()),
        "keel Redis store, asyncio": lambda: loop.run_until_complete(keel_redis_async()),
    }
    load_before = harness.load_average()
    timings = harness.interleave(contenders, chunks, per=chunk, warmup=True)

    async def close() -> None:  # keel's asyncio client is that of the running loop
        await async_raw.aclose()
        await get_async_redis().aclose()

    loop.run_until_complete(close())
    loop.close()

    # Round trips, counted on separate clients so the timed runs carry no instrumentation.
    counting = harness.counting_connection()
    counter = redis.Redis.from_url(args.redis_url, connection_class=counting)
    counter.ping()  # the connection's handshake is not part of what is counted

    def round_trips(run: Callable[[], Any]) -> int:
        before = counting.replies
        run()
        return int(counting.replies - before)

    with override_settings(KEEL={**settings.KEEL, "REDIS_OPTIONS": {"connection_class": counting}}):
        get_redis().ping()
        token = keel_redis.create_token(PAYLOAD)
        create = round_trips(lambda: keel_redis.create_token(PAYLOAD))
        consume = round_trips(lambda: keel_redis.consume_token(token))
        naive = NaiveManager(counter, f"{prefix}:naive")
        naive_consume = round_trips(lambda: naive.consume_token("x" * 43))
    trips = dict.fromkeys(contenders, 1) | {
        "keel Redis store": consume,
        "keel Redis store, asyncio": consume,
        "naive get-then-delete (baseline)": naive_consume,
    }
    rows = []
    for name in contenders:
        floor = async_floor if "asyncio" in name else sync_floor
        median, cpu = timings.median(name), timings.cpu_median(name)
        paired = [timings.paired(name, sync_floor), timings.paired(name, async_floor)]
        cpu_ratio = cpu / timings.cpu_median(floor)
        rows.append([name, 1 / median, median * 1e6, *paired, cpu * 1e6, cpu_ratio, trips[name]])
    report = Report("tokens.py")
    report.table(
        "contender; pairs/s|{:,.0f}; µs per pair|{:.1f}; vs sync floor|{:.0%}; "
        "vs asyncio floor|{:.0%}; client CPU µs per pair|{:.1f}; CPU vs its floor|{:.2f}x; "
        "round trips per consume|{}",
        rows,
        caption=f"{harness.versions(f'redis-py {redis.__version__}')}, "
        f"Redis {get_redis().info('server')['redis_version']}, "
        f"PostgreSQL {'.'.join(map(str, connection.get_database_version()))}; "
        f"{platform.machine()}, {os.cpu_count()} CPUs; {chunk * chunks} create+consume pairs "
        f"per contender in {chunks} interleaved chunks of {chunk}; medians per chunk; load "
        f"average {load_before:.1f} before, {harness.load_average():.1f} after",
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
    report.data["tokens"] = {row[0]: row[1] for row in rows}
    harness.clean_redis(args.redis_url, prefix)
    ActionToken.objects.filter(purpose="bench:confirm").delete()
    report.emit(args.json)


if __name__ == "__main__":
    main()
