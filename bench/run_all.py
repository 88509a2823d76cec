"""Run every benchmark of ``bench/``, then render ``docs/performance.md`` and its plots.

    .venv-bench/bin/python bench/run_all.py [--quick | --smoke] [--only PART,...] [--no-write]
                                            [--docs DIR]

``make bench`` (``scripts/bench.sh``) builds the environment and calls this. Each part's script
runs in a child process with the options listed in ``SECTIONS`` and writes its results as JSON;
the run's JSON (``build/bench/results.json``) gathers them with the machine and the load, and
``bench/render.py`` turns it into the page and the plots. A part that fails or cannot run is
reported on the page and in the exit status, never silently dropped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import PG_HOST, REDIS_URL, ROOT
from render import DOCS, RESULTS, render

SERVERS = f"--redis-url {REDIS_URL} --pg-host {PG_HOST}"
FIXTURES = f"--databases postgres --pg-host {PG_HOST}"

# key (its title and prose are in bench/sections.md), order of its goals in the summary, and
# its parts: a script and its options in each mode (`--smoke`: the smallest sizes, to check
# that everything runs).
SECTIONS: list[tuple[str, int, list[tuple[str, str, str, str]]]] = [
    (
        "mixins",
        4,
        [
            (
                "mixins.py",
                "--rows 10000 --repeats 5",
                "--rows 3000 --repeats 3",
                "--rows 300 --repeats 2 --saves 20",
            )
        ],
    ),
    (
        "mixins_misc",
        4,
        [
            (
                "mixins_misc.py",
                "--db postgres --rows 200 --repeats 5",
                "--db postgres --rows 100 --repeats 3",
                "--db postgres --rows 20 --repeats 2",
            )
        ],
    ),
    (
        "site_settings",
        5,
        [
            (
                "site_settings.py",
                f"--reads 2000 --repeats 7 {SERVERS}",
                f"--reads 500 --repeats 3 {SERVERS}",
                f"--reads 100 --repeats 2 {SERVERS}",
            )
        ],
    ),
    (
        "site_tracking",
        13,
        [
            (
                "site_tracking.py",
                "--rounds 200 --changes 30",
                "--rounds 50 --changes 10",
                "--rounds 10 --changes 2 --gap 0.3 --clients 2",
            )
        ],
    ),
    (
        "tokens",
        7,
        [
            (
                "tokens.py",
                f"--pairs 1000 --repeats 9 {SERVERS}",
                f"--pairs 200 --repeats 3 {SERVERS}",
                f"--pairs 100 --repeats 2 {SERVERS}",
            )
        ],
    ),
    (
        "fixtures",
        6,
        [
            (
                "fixtures.py",
                f"--rows {rows} --repeats {repeats} {FIXTURES}",
                f"--rows {rows} --repeats 1 {FIXTURES}",
                f"--rows {rows // 10} --repeats 1 --loop-sample 100 {FIXTURES}",
            )
            for rows, repeats in ((1000, 3), (10000, 3))
        ]
        + [
            (
                "fixtures.py",
                f"--rows 100000 --repeats 1 --loop-sample 2000 {FIXTURES}",
                f"--rows 100000 --repeats 1 --loop-sample 1000 {FIXTURES}",
                f"--rows 3000 --repeats 1 --loop-sample 100 {FIXTURES}",
            )
        ],
    ),
    (
        "load",
        5,
        [
            (
                "load.py",
                "--seconds 5 --rounds 2",
                "--seconds 3 --rounds 1",
                "--seconds 1 --rounds 1 --clients 2",
            )
        ],
    ),
    (
        "seeds",
        9,
        [
            (
                "seeds.py",
                f"--rows 2000 --fixture-repeats 3 --repeats 7 {SERVERS}",
                "--rows 500 --fixture-repeats 1 --repeats 3 --reads 300 --pairs 100 "
                f"--load-rows 2000 --saves 100 {SERVERS}",
                "--rows 300 --fixture-repeats 1 --repeats 2 --reads 100 --pairs 50 "
                f"--load-rows 300 --saves 20 {SERVERS}",
            )
        ],
    ),
]
NEEDS_GUNICORN = {"load.py", "site_tracking.py"}


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    pieces = [f"{cpu}, {os.cpu_count()} cores", f"Python {platform.python_version()}"]
    try:
        import django

        pieces.append(f"Django {django.get_version()}")
    except ImportError:
        pieces.append("Django not installed")
    try:
        import psycopg

        with psycopg.connect(host=PG_HOST, user="postgres", dbname="postgres") as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pieces.append(f"PostgreSQL {row[0].split()[0] if row else '?'}")
    except Exception as exc:
        pieces.append(f"PostgreSQL unreachable ({type(exc).__name__})")
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        pieces.append(f"Redis {client.info('server')['redis_version']}")
        client.close()
    except Exception as exc:
        pieces.append(f"Redis unreachable ({type(exc).__name__})")
    return ", ".join(pieces)


def load_average() -> str:
    try:
        return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        return "unknown"


def run_part(script: str, options: list[str], out: Path, timeout: float) -> dict[str, Any]:
    """Run one script; its JSON result, or the reason there is none."""
    part: dict[str, Any] = {"script": script, "options": options, "error": "", "result": None}
    command = shlex.join([".venv-bench/bin/python", f"bench/{script}", *options])
    if script in NEEDS_GUNICORN and not Path(sys.executable).with_name("gunicorn").exists():
        part["error"] = (
            f"SKIPPED: bench/{script} needs gunicorn beside this Python "
            "(the `bench` dependency group)"
        )
        print(f"*** {part['error']}", file=sys.stderr, flush=True)
        return part
    print(f"--> {command}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    out.unlink(missing_ok=True)
    argv = [sys.executable, str(ROOT / "bench" / script), *options, "--json", str(out)]
    try:
        done = subprocess.run(argv, cwd=ROOT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        part["error"] = f"FAILED: no result within {timeout:.0f} s"
    else:
        if done.returncode:
            part["error"] = f"FAILED with exit status {done.returncode} (its output is above)"
    if out.exists():
        part["result"] = json.loads(out.read_text(encoding="utf-8"))
    elif not part["error"]:
        part["error"] = "FAILED: the script wrote no results"
    status = part["error"] or "ok"
    print(f"<-- bench/{script}: {status} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="fewer rounds (a shorter run)")
    modes.add_argument("--smoke", action="store_true", help="the smallest sizes: does it run?")
    parser.add_argument("--docs", type=Path, default=DOCS, help="where to write the page")
    parser.add_argument("--only", default="", help="comma-separated section keys")
    parser.add_argument("--no-write", action="store_true", help="write no page or plot")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per script")
    args = parser.parse_args()
    only = [key for key in args.only.split(",") if key]
    started = time.perf_counter()
    load_start = load_average()
    machine = machine_line()
    print(f"machine: {machine}; load average {load_start}", file=sys.stderr)
    sections = []
    for key, order, parts in SECTIONS:
        if only and key not in only:
            continue
        done = []
        for number, (script, *options) in enumerate(parts):
            chosen = shlex.split(options[1 if args.quick else 2 if args.smoke else 0])
            out = RESULTS.parent / f"{key}-{number}.json"
            done.append(run_part(script, chosen, out, args.timeout))
        sections.append({"key": key, "order": order, "parts": done})
    results = {
        "run": {
            "argv": sys.argv[1:],
            "quick": args.quick,
            "smoke": args.smoke,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine,
            "loads": [load_start, load_average()],
            "total": time.perf_counter() - started,
        },
        "sections": sections,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    goals = render(results, write=not args.no_write, docs=args.docs)
    print(f"\nGoals ({len(goals)}):", file=sys.stderr)
    for goal in goals:
        mark = "met    " if goal["met"] else "NOT met"
        print(f"  [{mark}] {goal['label']}: {goal['goal']}: {goal['measured']}", file=sys.stderr)
    failed = [p for s in sections for p in s["parts"] if p["error"].startswith("FAILED")]
    for part in failed:
        print(f"  *** bench/{part['script']}: {part['error']}", file=sys.stderr)
    print(f"bench: whole run {results['run']['total'] / 60:.1f} min", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
