"""Client tracking: how long a write in one process takes to reach the others, first to
keel's invalidation listeners alone, then to the example project's gunicorn workers."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import django
import redis

from harness import ROOT, Report, options, percentile
from load import example_env, get, in_processes, start_gunicorn, stop

sys.path.insert(0, str(ROOT))
from tests.reliability.servers import Processes, free_port


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
            time.sleep(0.0002)
        out.put(time.monotonic())


def listener_alone(report: Report, url: str, args: Any) -> None:
    readers, rounds = args.readers, args.rounds
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    key = f"{prefix}:site:doc"
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(readers + 1), context.Queue()
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
    p99 = percentile(delays, 0.99) * 1000
    report.table(
        "path; samples|{}; p50 ms|{:.2f}; p99 ms|{:.2f}; max ms|{:.2f}",
        [
            [
                "`SET` in one process → `is_current` false in another (listener alone)",
                len(delays),
                statistics.median(delays) * 1000,
                p99,
                max(delays) * 1000,
            ]
        ],
        caption=f"{platform.node()} · Python {platform.python_version()} · "
        f"redis-py {redis.__version__} · Redis {writer.info('server')['redis_version']} on "
        f"loopback · {readers} reader processes, {rounds} writes",
    )
    report.goal(
        "a change seen by every process within 50 ms (p99), listener alone",
        f"{p99:.1f} ms",
        p99 <= 50,
    )
    writer.close()


class Answer(NamedTuple):
    """One answered request: when the worker's read started and ended, which worker, which
    name."""

    started: float
    ended: float
    worker: int
    version: int


def sampler(port: int, seconds: float, out: Any) -> None:
    """Request the page for ``seconds``; put one :class:`Answer` per response."""
    deadline = time.monotonic() + seconds
    samples = []
    while time.monotonic() < deadline:
        _, body, response, _ = get(port)
        found = re.search(rb"Bench change (\d+)", body)
        started, ended = (response.getheader("X-Keel-Read") or "nan nan").split()
        worker = int(response.getheader("X-Keel-Worker") or 0)
        samples.append(Answer(float(started), float(ended), worker, int(found[1]) if found else 0))
    out.put(samples)


def propagation_delays(
    commits: dict[int, float], samples: list[Answer]
) -> tuple[list[float], list[float], int]:
    """Per commit and worker, bounds of the time from the commit to the moment after which
    the worker never answers with an older name: the end of the read behind its last answer
    with an older name that may have read after the commit (upper bound), and that read's
    start (lower bound, at least 0); 0 for both when there is none. Also how many (commit,
    worker) pairs never answered with the new name at all."""
    workers = {answer.worker for answer in samples}
    upper, lower, missing = [], [], 0
    for version, committed in commits.items():
        for pid in workers:
            mine = [a for a in samples if a.worker == pid and a.ended >= committed]
            if not any(a.version >= version for a in mine):
                missing += 1
                continue
            stale = [a for a in mine if a.version < version]
            last = max(stale, key=lambda a: a.ended, default=None)
            upper.append(last.ended - committed if last else 0.0)
            lower.append(max(last.started - committed, 0.0) if last else 0.0)
    return sorted(upper), sorted(lower), missing


def request_gap(samples: list[Answer]) -> float:
    """The median time between the starts of two consecutive reads of one worker."""
    gaps: list[float] = []
    for pid in {answer.worker for answer in samples}:
        starts = sorted(a.started for a in samples if a.worker == pid)
        gaps += [b - a for a, b in itertools.pairwise(starts)]
    return statistics.median(gaps) if gaps else math.nan


def example_project(report: Report, url: str, args: Any) -> None:
    changes, gap, clients = args.changes, args.gap, args.clients
    workdir = Path(tempfile.mkdtemp(prefix="keel-tracking-"))
    try:
        env = example_env(workdir) | {"REDIS_URL": url}
        env["KEEL_KEY_PREFIX"] = f"bench{uuid.uuid4().hex[:6]}"
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        sys.path.insert(0, str(ROOT / "example"))
        django.setup()
        from system.models import SiteSettings

        rows: list[list[Any]] = []
        for offset, (label, tracking) in enumerate(
            (("client tracking", "1"), ("time window (`SITE_SETTINGS_TRACKING = False`)", "0"))
        ):
            port = free_port()
            app = "bench.tracking_app:application"
            log = workdir / f"{port}.log"
            gunicorn = start_gunicorn({**env, "KEEL_BENCH_TRACKING": tracking}, port, log, app)
            commits: dict[int, float] = {}

            def save_changes(offset: int = offset, commits: dict[int, float] = commits) -> None:
                time.sleep(2)  # every worker has served the page: copies and listeners are warm
                for n in range(1000 * (offset + 1), 1000 * (offset + 1) + changes):
                    time.sleep(gap)
                    settings_row = SiteSettings.load()
                    settings_row.site_name = f"Bench change {n}"
                    settings_row.save()
                    commits[n] = time.monotonic()

            try:
                # 2 s of warm-up before the first save, 10 s after the last (two windows).
                seconds = 2 + changes * gap + 10
                runs = in_processes(sampler, clients, port, seconds, during=save_changes)
                samples = [sample for run in runs for sample in run]
            finally:
                stop([gunicorn])
            upper, lower, missing = propagation_delays(commits, samples)
            quantiles = [statistics.median(upper), percentile(upper, 0.99), upper[-1]]
            quantiles += [statistics.median(lower), percentile(lower, 0.99)]
            workers = len({answer.worker for answer in samples})
            gaps = request_gap(samples) * 1000
            milliseconds = [q * 1000 for q in quantiles]
            rows.append([label, workers, len(upper), len(samples), gaps, *milliseconds, missing])
        report.table(
            "reader; workers|{}; (save, worker) pairs|{}; requests|{}; "
            "median gap between a worker's reads, ms|{:.1f}; "
            "commit → last stale answer, upper bound: p50 ms|{:.1f}; p99 ms|{:.1f}; "
            "max ms|{:.1f}; lower bound: p50 ms|{:.1f}; p99 ms|{:.1f}; pairs never fresh|{}",
            rows,
            caption=f"the example project under gunicorn (4 sync workers), {clients} client "
            f"processes, {changes} saves {gap:g} s apart",
        )
        p99 = rows[0][6]
        report.goal(
            "a change saved by any process is seen by every process within 50 ms (p99; "
            "upper bound of the time from the commit to each worker's last stale answer), "
            "client tracking",
            f"{p99:.1f} ms",
            p99 <= 50,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    args = options(__doc__, readers=4, rounds=200, changes=30, gap=0.5, clients=8)
    report = Report("site_tracking.py")
    for part in (listener_alone, example_project):
        servers = Processes()
        try:
            part(report, f"redis://127.0.0.1:{servers.start().port}/0", args)
        finally:
            servers.stop()
    report.emit(args.json)


if __name__ == "__main__":
    main()
