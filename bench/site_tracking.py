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
seconds. The goal's measure, for each save and each worker: the time from the commit (the
return of ``save()``) to the moment after which that worker never answers with an older name.
That moment is the read behind the worker's last stale answer. Each request reads the
settings once, first thing (``bench/tracking_app.py``; the request memo hands that object to
the rest of the page), and the worker reports the machine's ``CLOCK_MONOTONIC`` just before
and just after that read. The table gives the upper bound (the end of the read behind the
last stale answer; 0 when no answer read after the commit was stale) and the lower bound (its
start), and how densely the workers were asked (the median gap between two reads of one
worker: a worker that is not asked cannot answer stale).
"""

from __future__ import annotations

import http.client
import itertools
import math
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
from typing import Any, NamedTuple

import django
import redis

from harness import ROOT, Report, parser, percentile

sys.path.insert(0, str(ROOT))
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


def listener_alone(report: Report, readers: int, rounds: int) -> None:
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
        report.table(
            ["path", "samples|{}", *(f"{t}|{{:.2f}}" for t in ("p50 ms", "p99 ms", "max ms"))],
            [
                [
                    "`SET` in one process → `is_current` false in another (listener alone)",
                    len(delays),
                    statistics.median(delays) * 1000,
                    percentile(delays, 0.99) * 1000,
                    max(delays) * 1000,
                ]
            ],
            caption=f"{platform.node()} · Python {platform.python_version()} · "
            f"redis-py {redis.__version__} · Redis {writer.info('server')['redis_version']} on "
            f"loopback · {readers} reader processes, {rounds} writes",
        )
        p99 = percentile(delays, 0.99) * 1000
        report.goal(
            "a change seen by every process within 50 ms (p99), listener alone",
            f"{p99:.1f} ms",
            p99 <= 50,
        )
        writer.close()
    finally:
        servers.stop()


VERSION = re.compile(rb"Bench change (\d+)")


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
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        found = VERSION.search(body)
        started, ended = (response.getheader("X-Keel-Read") or "nan nan").split()
        samples.append(
            Answer(
                float(started),
                float(ended),
                int(response.getheader("X-Keel-Worker") or 0),
                int(found.group(1)) if found else 0,
            )
        )
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


def example_project(report: Report, changes: int, gap: float, clients: int) -> None:
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

        rows: list[list[Any]] = []
        goals: list[float] = []
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
            upper, lower, missing = propagation_delays(commits, samples)
            rows.append(
                [
                    label,
                    len({answer.worker for answer in samples}),
                    len(upper),
                    len(samples),
                    request_gap(samples) * 1000,
                    *(
                        q * 1000
                        for q in (statistics.median(upper), percentile(upper, 0.99), upper[-1])
                    ),
                    *(q * 1000 for q in (statistics.median(lower), percentile(lower, 0.99))),
                    missing,
                ]
            )
            if tracking == "1":
                goals.append(percentile(upper, 0.99) * 1000)
        titles = [
            "median gap between a worker's reads, ms",
            "commit → last stale answer, upper bound: p50 ms",
            "p99 ms",
            "max ms",
            "lower bound: p50 ms",
            "p99 ms",
        ]
        report.table(
            [
                "reader",
                *(f"{t}|{{}}" for t in ("workers", "(save, worker) pairs", "requests")),
                *(f"{t}|{{:.1f}}" for t in titles),
                "pairs never fresh|{}",
            ],
            rows,
            caption=f"the example project under gunicorn (4 sync workers), {clients} client "
            f"processes, {changes} saves {gap:g} s apart",
        )
        for goal in goals:
            report.goal(
                "a change saved by any process is seen by every process within 50 ms (p99; "
                "upper bound of the time from the commit to each worker's last stale answer), "
                "client tracking",
                f"{goal:.1f} ms",
                goal <= 50,
            )
    finally:
        servers.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--readers", type=int, default=4)
    options.add_argument("--rounds", type=int, default=200)
    options.add_argument("--changes", type=int, default=30)
    options.add_argument("--gap", type=float, default=0.5)
    options.add_argument("--clients", type=int, default=8)
    options.add_argument(
        "--only", choices=("listener", "example"), help="run one of the two parts only"
    )
    args = options.parse_args()
    report = Report("site_tracking.py")
    if args.only != "example":
        listener_alone(report, args.readers, args.rounds)
    if args.only != "listener":
        example_project(report, args.changes, args.gap, args.clients)
    report.emit(args.json)


if __name__ == "__main__":
    main()
