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

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import django
import psycopg
import redis
import redis.asyncio
from django.conf import settings

PAYLOAD: dict[str, Any] = {"user_id": 123456, "email": "ada@example.com", "action": "confirm"}
DB_NAME = "keel_bench_tokens"


def configure(args: argparse.Namespace, key_prefix: str) -> None:
    with psycopg.connect(
        host=args.pg_host, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": DB_NAME,
                "USER": "postgres",
                "HOST": args.pg_host,
                "CONN_MAX_AGE": None,
            }
        },
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "keel"],
        USE_TZ=True,
        SECRET_KEY="keel-bench-not-secret",
        KEEL={"REDIS_URL": args.redis_url, "KEY_PREFIX": key_prefix},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", "keel", verbosity=0)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=50, help="pairs per interleaved chunk")
    parser.add_argument(
        "--redis-url", default=os.environ.get("KEEL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    )
    parser.add_argument("--pg-host", default="127.0.0.1")
    args = parser.parse_args()

    key_prefix = f"keelbench-{uuid.uuid4().hex[:8]}"
    configure(args, key_prefix)

    from keel.redis import get_async_redis, get_redis
    from keel.tokens import JsonActionTokenDatabaseManager, JsonActionTokenRedisManager

    client = get_redis()
    raw = redis.Redis.from_url(args.redis_url)
    naive = NaiveManager(raw, f"{key_prefix}:naive")
    keel_redis = JsonActionTokenRedisManager(prefix="bench:confirm")
    keel_db = JsonActionTokenDatabaseManager(prefix="bench:confirm")
    value = json.dumps(PAYLOAD)
    chunk = max(1, min(args.chunk, args.pairs))
    chunks = max(1, args.pairs // chunk) * args.repeats
    pairs = chunk * chunks  # per contender, in all

    def raw_floor() -> None:
        for _ in range(chunk):
            key = f"{key_prefix}:raw:{secrets.token_urlsafe(32)}"
            raw.set(key, value, nx=True, ex=3600)
            assert raw.getdel(key) is not None

    # One event loop for every asyncio chunk: its clients (and keel's, one pool per loop)
    # keep their connections from chunk to chunk, as in a long-running ASGI worker.
    loop = asyncio.new_event_loop()
    async_raw = redis.asyncio.Redis.from_url(args.redis_url)

    def raw_async_floor() -> None:
        async def run() -> None:
            for _ in range(chunk):
                key = f"{key_prefix}:raw:{secrets.token_urlsafe(32)}"
                await async_raw.set(key, value, nx=True, ex=3600)
                assert await async_raw.getdel(key) is not None

        loop.run_until_complete(run())

    def keel_redis_round() -> None:
        for _ in range(chunk):
            assert keel_redis.consume_token(keel_redis.create_token(PAYLOAD)) is not None

    def keel_redis_async_round() -> None:
        async def run() -> None:
            for _ in range(chunk):
                token = await keel_redis.acreate_token(PAYLOAD)
                assert await keel_redis.aconsume_token(token) is not None

        loop.run_until_complete(run())

    def naive_round() -> None:
        for _ in range(chunk):
            assert naive.consume_token(naive.create_token(PAYLOAD)) is not None

    def keel_db_round() -> None:
        for _ in range(chunk):
            assert keel_db.consume_token(keel_db.create_token(PAYLOAD)) is not None

    sync_floor, async_floor = "raw redis-py SET+GETDEL (floor)", "raw redis-py asyncio (floor)"
    contenders: list[tuple[str, Callable[[], None]]] = [
        (sync_floor, raw_floor),
        ("keel Redis store", keel_redis_round),
        ("naive get-then-delete (baseline)", naive_round),
        ("keel database store (PostgreSQL)", keel_db_round),
        (async_floor, raw_async_floor),
        ("keel Redis store, asyncio", keel_redis_async_round),
    ]
    load_before = os.getloadavg()[0]
    # Warm up connections, code paths and the table.
    for _, run in contenders:
        run()
    # Per contender, per chunk: wall seconds and CPU seconds of this process.
    seconds: dict[str, list[float]] = {name: [] for name, _ in contenders}
    cpu: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for number in range(chunks):
        shift = number % len(contenders)
        for name, run in contenders[shift:] + contenders[:shift]:
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            seconds[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)

    async def close() -> None:
        await async_raw.aclose()
        await get_async_redis().aclose()

    loop.run_until_complete(close())
    loop.close()

    # Round trips, counted on separate clients so the timed runs carry no instrumentation.
    counting = redis.Redis.from_url(args.redis_url, connection_class=ReplyCountingConnection)
    counting.ping()  # the connection's handshake is not part of what is counted
    from django.test.utils import override_settings

    counted_keel = {**settings.KEEL, "REDIS_OPTIONS": {"connection_class": ReplyCountingConnection}}
    with override_settings(KEEL=counted_keel):
        get_redis().ping()
        token = keel_redis.create_token(PAYLOAD)
        trips = {
            "keel create": round_trips(lambda: keel_redis.create_token(PAYLOAD)),
            "keel consume": round_trips(lambda: keel_redis.consume_token(token)),
            "naive consume": round_trips(
                lambda: NaiveManager(counting, f"{key_prefix}:naive").consume_token("x" * 43)
            ),
        }
    consume_trips = {
        sync_floor: 1,
        async_floor: 1,
        "keel Redis store": trips["keel consume"],
        "keel Redis store, asyncio": trips["keel consume"],
        "naive get-then-delete (baseline)": trips["naive consume"],
        "keel database store (PostgreSQL)": 1,
    }
    medians = {name: statistics.median(values) / chunk for name, values in seconds.items()}
    cpu_medians = {name: statistics.median(values) / chunk for name, values in cpu.items()}

    def paired(name: str, floor: str) -> float:
        """Median over chunks of floor time / contender time, chunks run side by side."""
        return statistics.median(f / c for f, c in zip(seconds[floor], seconds[name], strict=True))

    print(
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"redis-py {redis.__version__}, Redis {client.info('server')['redis_version']}, "
        f"PostgreSQL {keel_db_server_version()}; {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {pairs} create+consume pairs per contender in {chunks} "
        f"interleaved chunks of {chunk}; medians per chunk; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print()
    print(
        "| contender | pairs/s | µs per pair | vs sync floor | vs asyncio floor "
        "| client CPU µs per pair | CPU vs its floor | round trips per consume |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, _ in contenders:
        floor = async_floor if "asyncio" in name else sync_floor
        print(
            f"| {name} | {1 / medians[name]:,.0f} | {medians[name] * 1e6:.1f} | "
            f"{paired(name, sync_floor):.0%} | {paired(name, async_floor):.0%} | "
            f"{cpu_medians[name] * 1e6:.1f} | {cpu_medians[name] / cpu_medians[floor]:.2f}x | "
            f"{consume_trips[name]} |"
        )
    ratio = paired("keel Redis store", sync_floor)
    async_ratio = paired("keel Redis store, asyncio", async_floor)
    cpu_ratio = cpu_medians["keel Redis store"] / cpu_medians[sync_floor]
    print()
    print(
        f"Goal: keel's Redis store at least 80% of the raw redis-py floor: "
        f"{ratio:.0%}, {'met' if ratio >= 0.8 else 'NOT met'} "
        f"(asyncio: {async_ratio:.0%} of the asyncio floor; client CPU {cpu_ratio:.2f}x the "
        f"floor's). Consume is one round trip: "
        f"{'met' if trips['keel consume'] == 1 else 'NOT met'} "
        f"({trips['keel consume']}); create is {trips['keel create']}."
    )
    leftovers = list(client.scan_iter(match=f"{key_prefix}*", count=1000))
    if leftovers:
        client.delete(*leftovers)
    from keel.models import ActionToken

    ActionToken.objects.filter(purpose="bench:confirm").delete()


def keel_db_server_version() -> str:
    from django.db import connection

    backend: Any = connection
    major, rest = divmod(backend.pg_version, 10000)
    return f"{major}.{rest}"


if __name__ == "__main__":
    main()
