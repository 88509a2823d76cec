"""Client tracking: how long a write in one process takes to reach the others.

    .venv/bin/python bench/site_tracking.py [--readers 4] [--rounds 200] [--changes 30]

Listener alone: a throwaway ``redis-server``; ``--readers`` processes each start keel's
invalidation listener (``keel.site.tracking``) and take a stamp; then this process ``SET``s the
key and every reader notes when ``is_current(key, stamp)`` turns false, polling every 0.2 ms
as a busy worker would between requests. The delay is reader's time minus the time just
before the ``SET`` (``CLOCK_MONOTONIC``, one clock for every process of the machine); rounds
are separated by barriers, so every sample starts from a stamp taken before the write.

The example project: its home page (site name in the header) under gunicorn with 4 sync
workers and a throwaway ``redis-server``, once with client tracking and once with
``SITE_SETTINGS_TRACKING = False`` (the time window). ``--clients`` processes request the page
without pause; this process saves a new site name ``--changes`` times, every ``--gap``
seconds. For each save and each worker, two delays from the return of ``save()`` (the
commit): to the arrival, at that worker, of the last request still answered with an older name
(0 if none), and to the arrival of the first answered with the new name or a newer one. The
propagation delay lies between the two; they differ by the time between two requests.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import django
import redis

from tests.reliability.servers import Processes, free_port

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
            f"Goal: a change seen by every process within 50 ms (p99), listener "
            f"alone: {p99:.1f} ms → {'met' if p99 <= 50 else 'NOT met'}."
        )
        writer.close()
    finally:
        servers.stop()


VERSION = re.compile(rb"Bench change (\d+)")


def sampler(port: int, seconds: float, out: Any) -> None:
    """Request the page for ``seconds``; put (arrival, worker pid, name version) per answer."""
    deadline = time.monotonic() + seconds
    samples = []
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        found = VERSION.search(body)
        samples.append(
            (
                float(response.getheader("X-Keel-Started") or "nan"),
                int(response.getheader("X-Keel-Worker") or 0),
                int(found.group(1)) if found else 0,
            )
        )
    out.put(samples)


def propagation_delays(
    commits: dict[int, float], samples: list[tuple[float, int, int]]
) -> tuple[list[float], list[float], int]:
    """Per commit and worker: from the commit to the arrival of the last request still
    answered with an older name (0 if none: a lower bound of the delay) and to the arrival of
    the first answered with it or a newer one (an upper bound); and how many never came."""
    workers = {pid for _t, pid, _v in samples}
    stale_until, fresh_from, missing = [], [], 0
    for version, committed in commits.items():
        for pid in workers:
            after = [(t, v) for t, p, v in samples if p == pid and t >= committed]
            fresh = [t for t, v in after if v >= version]
            if not fresh:
                missing += 1
                continue
            fresh_from.append(min(fresh) - committed)
            stale = [t for t, v in after if v < version]
            stale_until.append(max(stale) - committed if stale else 0.0)
    return sorted(stale_until), sorted(fresh_from), missing


def quantiles_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} | {percentile(values, 0.99) * 1000:.1f}"


def example_project(changes: int, gap: float, clients: int) -> None:
    from load import example_env, start_gunicorn

    workdir = Path(tempfile.mkdtemp(prefix="keel-tracking-"))
    servers = Processes()
    try:
        redis_server = servers.start()
        env = {
            **example_env(workdir),
            "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
            "KEEL_KEY_PREFIX": f"bench{uuid.uuid4().hex[:6]}",
        }
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        sys.path.insert(0, str(ROOT / "example"))
        django.setup()
        from system.models import SiteSettings

        rows: list[str] = []
        goals: list[str] = []
        for offset, (label, tracking) in enumerate(
            (("client tracking", "1"), ("time window (`SITE_SETTINGS_TRACKING = False`)", "0"))
        ):
            port = free_port()
            gunicorn = start_gunicorn(
                {**env, "KEEL_BENCH_TRACKING": tracking},
                port,
                workdir / f"{port}.log",
                app="bench.tracking_app:application",
            )
            try:
                context = multiprocessing.get_context("fork")
                out = context.Queue()
                # 2 s of warm-up before the first save, 10 s after the last (two windows).
                seconds = 2 + changes * gap + 10
                processes = [
                    context.Process(target=sampler, args=(port, seconds, out))
                    for _ in range(clients)
                ]
                for process in processes:
                    process.start()
                time.sleep(2)  # every worker has served the page: copies and listeners are warm
                commits = {}
                for n in range(1000 * (offset + 1), 1000 * (offset + 1) + changes):
                    time.sleep(gap)
                    settings_row = SiteSettings.load()
                    settings_row.site_name = f"Bench change {n}"
                    settings_row.save()
                    commits[n] = time.monotonic()
                samples = [sample for _ in processes for sample in out.get(timeout=seconds + 30)]
                for process in processes:
                    process.join(timeout=30)
            finally:
                gunicorn.send_signal(signal.SIGTERM)
                gunicorn.wait(timeout=15)
            stale, fresh, missing = propagation_delays(commits, samples)
            workers = len({pid for _t, pid, _v in samples})
            rows.append(
                f"| {label} | {workers} | {len(fresh)} | {len(samples)} | "
                f"{quantiles_ms(stale)} | {quantiles_ms(fresh)} | {missing} |"
            )
            if tracking == "1":
                goal = percentile(stale, 0.99) * 1000
                goals.append(
                    f"Goal: a save seen by every gunicorn worker within 50 ms (p99 of "
                    f"the last stale answer), client tracking: {goal:.1f} ms → "
                    f"{'met' if goal <= 50 else 'NOT met'}."
                )
        print(
            f"# the example project under gunicorn (4 sync workers), {clients} client "
            f"processes, {changes} saves {gap:g} s apart"
        )
        print()
        print(
            "| reader | workers | delays | requests | last stale answer p50 ms | p99 ms "
            "| first fresh answer p50 ms | p99 ms | saves never seen |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            print(row)
        print()
        for line in goals:
            print(line)
    finally:
        servers.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--gap", type=float, default=0.5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--only", choices=("listener", "example"), help="run one of the two parts only"
    )
    args = parser.parse_args()
    if args.only != "example":
        listener_alone(args.readers, args.rounds)
    if args.only != "listener":
        print()
        example_project(args.changes, args.gap, args.clients)


if __name__ == "__main__":
    main()
