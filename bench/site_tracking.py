"""Client tracking: how long a write in one process takes to reach the others.

    .venv/bin/python bench/site_tracking.py [--readers 4] [--rounds 200]

Listener alone: a throwaway ``redis-server``; ``--readers`` processes each start keel's
invalidation listener (``keel.site.tracking``) and take a stamp; then this process ``SET``s the
key and every reader notes when ``is_current(key, stamp)`` turns false, polling every 0.2 ms
as a busy worker would between requests. The delay is reader's time minus the time just
before the ``SET`` (``CLOCK_MONOTONIC``, one clock for every process of the machine); rounds
are separated by barriers, so every sample starts from a stamp taken before the write.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

import django
import redis

from tests.reliability.servers import Processes

POLL = 0.0002


def reader(url: str, prefix: str, key: str, rounds: int, barrier: Any, out: Any) -> None:
    from django.conf import settings

    settings.configure(KEEL={"REDIS_URL": url, "KEY_PREFIX": prefix}, INSTALLED_APPS=[])
    django.setup()
    from keel.site.tracking import get_listener

    listener = get_listener()
    assert listener is not None and listener.wait_live(10), "the listener never went live"
    for _ in range(rounds):
        barrier.wait()
        stamp = listener.stamp()
        assert stamp is not None
        barrier.wait()
        while listener.is_current(key, stamp):
            time.sleep(POLL)
        out.put(time.monotonic())


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


def listener_alone(readers: int, rounds: int) -> None:
    servers = Processes()
    try:
        server = servers.start()
        url = f"redis://127.0.0.1:{server.port}/0"
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        key = f"{prefix}:site:doc"
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(readers + 1)
        out = context.Queue()
        processes = [
            context.Process(target=reader, args=(url, prefix, key, rounds, barrier, out))
            for _ in range(readers)
        ]
        for process in processes:
            process.start()
        writer = redis.Redis.from_url(url)
        writer.ping()
        delays: list[float] = []
        for n in range(rounds):
            barrier.wait()  # every reader is live
            barrier.wait()  # every reader holds a stamp
            started = time.monotonic()
            writer.set(key, n)
            delays += [out.get(timeout=30) - started for _ in range(readers)]
        for process in processes:
            process.join(timeout=30)
        delays.sort()
        print(
            f"# {platform.node()} · Python {platform.python_version()} · "
            f"redis-py {redis.__version__} · Redis "
            f"{writer.info('server')['redis_version']} on loopback · {readers} reader "
            f"processes, {rounds} writes"
        )
        print()
        print("| path | samples | p50 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|")
        print(
            f"| `SET` in one process → `is_current` false in another (listener alone) | "
            f"{len(delays)} | {statistics.median(delays) * 1000:.2f} | "
            f"{percentile(delays, 0.99) * 1000:.2f} | {delays[-1] * 1000:.2f} |"
        )
        p99 = percentile(delays, 0.99) * 1000
        print()
        print(
            f"Goal (issue 13) a change seen by every process within 50 ms (p99), listener "
            f"alone: {p99:.1f} ms → {'met' if p99 <= 50 else 'NOT met'}."
        )
        writer.close()
    finally:
        servers.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    listener_alone(args.readers, args.rounds)


if __name__ == "__main__":
    main()
