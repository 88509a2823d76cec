"""Run every benchmark of ``bench/``, then render ``docs/performance.md`` and its plots.

Each part's script runs in a child process with the options of ``SECTIONS``; the run's JSON
(``build/bench/results.json``) gathers their JSON with the machine and the load. A part that
fails or cannot run is reported on the page and in the exit status, never silently dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import PG_HOST, REDIS_URL, ROOT, postgres, redis_version, versions
from render import RESULTS, render

TIMEOUT = 1200.0  # seconds per script

S = f"--redis-url {REDIS_URL} --pg-host {PG_HOST}"
F = f"--databases postgres --pg-host {PG_HOST}"
# The goals are for 100,000 rows, on every database.
F_ALL = f"--databases postgres,sqlite,mysql --pg-host {PG_HOST}"

# key (its title and prose are in bench/sections.md), order of its goals in the summary, and
# its parts: a script and its options in each mode (default, `--quick`, and `--smoke`: the
# smallest sizes, to check that everything runs).
# fmt: off
SECTIONS: list[tuple[str, int, list[tuple[str, str, str, str]]]] = [
    ("mixins", 4, [("mixins.py", "--rows 10000 --repeats 5", "--rows 3000 --repeats 3",
                    "--rows 300 --repeats 2 --saves 20")]),
    ("mixins_misc", 4, [("mixins_misc.py", "--db postgres --rows 200 --repeats 5",
                         "--db postgres --rows 100 --repeats 3",
                         "--db postgres --rows 20 --repeats 2")]),
    ("site_settings", 5, [("site_settings.py", f"--reads 2000 --repeats 7 {S}",
                           f"--reads 500 --repeats 3 {S}", f"--reads 100 --repeats 2 {S}")]),
    ("site_tracking", 13, [("site_tracking.py", "--rounds 200 --changes 30",
                            "--rounds 50 --changes 10",
                            "--rounds 10 --changes 2 --gap 0.3 --clients 2")]),
    ("tokens", 7, [("tokens.py", f"--pairs 1000 --repeats 9 {S}", f"--pairs 200 --repeats 3 {S}",
                    f"--pairs 100 --repeats 2 {S}")]),
    ("fixtures", 6, [
        *(("fixtures.py", f"--rows {rows} --repeats 3 {F}", f"--rows {rows} --repeats 1 {F}",
           f"--rows {rows // 10} --repeats 1 --loop-sample 100 {F}") for rows in (1000, 10000)),
        ("fixtures.py", f"--rows 100000 --repeats 3 --loop-sample 2000 {F_ALL}",
         f"--rows 100000 --repeats 1 --loop-sample 1000 {F_ALL}",
         f"--rows 3000 --repeats 1 --loop-sample 100 {F_ALL}"),
    ]),
    ("load", 5, [("load.py", "--seconds 5 --rounds 2", "--seconds 3 --rounds 1",
                  "--seconds 1 --rounds 1 --clients 2")]),
    ("seeds", 9, [("seeds.py", f"--rows 2000 --fixture-repeats 3 --repeats 7 {S}",
                   "--rows 500 --fixture-repeats 1 --repeats 3 --reads 300 --pairs 100 "
                   f"--load-rows 2000 --saves 100 {S}",
                   "--rows 300 --fixture-repeats 1 --repeats 2 --reads 100 --pairs 50 "
                   f"--load-rows 300 --saves 20 {S}")]),
]
# fmt: on
NEEDS_GUNICORN = {"load.py", "site_tracking.py"}


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        models = re.findall(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = models[0].strip() if models else cpu
    pieces = []
    try:
        with postgres(PG_HOST) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pieces.append(f"PostgreSQL {row[0].split()[0] if row else '?'}")
    except Exception as exc:
        pieces.append(f"PostgreSQL unreachable ({type(exc).__name__})")
    try:
        pieces.append(redis_version(REDIS_URL))
    except Exception as exc:
        pieces.append(f"Redis unreachable ({type(exc).__name__})")
    return f"{cpu}, {os.cpu_count()} cores, {versions(*pieces)}"


def load_average() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def run_part(script: str, options: list[str], out: Path) -> dict[str, Any]:
    """Run one script; its JSON result, or the reason there is none."""
    part: dict[str, Any] = {"script": script, "options": options, "error": "", "result": None}
    if script in NEEDS_GUNICORN and not Path(sys.executable).with_name("gunicorn").exists():
        part["error"] = (
            f"SKIPPED: bench/{script} needs gunicorn beside this Python "
            "(the `bench` dependency group)"
        )
        print(f"*** {part['error']}", file=sys.stderr, flush=True)
        return part
    print(
        f"--> {shlex.join(['.venv-bench/bin/python', f'bench/{script}', *options])}",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    out.unlink(missing_ok=True)
    argv = [sys.executable, str(ROOT / "bench" / script), *options, "--json", str(out)]
    try:
        done = subprocess.run(argv, cwd=ROOT, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        part["error"] = f"FAILED: no result within {TIMEOUT:.0f} s"
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
    parser = argparse.ArgumentParser(description=__doc__)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="fewer rounds (a shorter run)")
    modes.add_argument("--smoke", action="store_true", help="the smallest sizes: does it run?")
    args = parser.parse_args()
    started = time.perf_counter()
    load_start, machine = load_average(), machine_line()
    print(f"machine: {machine}; load average {load_start}", file=sys.stderr)
    sections = []
    for key, order, parts in SECTIONS:
        done = []
        for number, (script, *options) in enumerate(parts):
            chosen = shlex.split(options[1 if args.quick else 2 if args.smoke else 0])
            done.append(run_part(script, chosen, RESULTS.parent / f"{key}-{number}.json"))
        sections.append({"key": key, "order": order, "parts": done})
    run = {"argv": sys.argv[1:], "quick": args.quick, "smoke": args.smoke}
    run["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    run |= {"machine": machine, "loads": [load_start, load_average()]}
    results = {"run": run | {"total": time.perf_counter() - started}, "sections": sections}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    goals = render(results)
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
