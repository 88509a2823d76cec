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

# key, title, order of its goals in the summary, intro, and its parts: a script and its
# options in each mode (`--smoke`: the smallest sizes, to check that everything runs).
SECTIONS: list[tuple[str, str, int, str, list[tuple[str, str, str, str]]]] = [
    (
        "mixins",
        "Model mixins: change tracking",
        4,
        "Loading rows and saving one changed field with keel's `AutoUpdateFieldsMixin` against "
        "plain Django, django-dirtyfields and django-model-utils `FieldTracker`, on SQLite in "
        "memory (so that the Python cost is what is measured) and on PostgreSQL, in the same "
        "run.",
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
        "Model mixins: uniqueness, validation, files",
        4,
        "Cost per save of `BetterUniquenessErrorsMixin`, `ValidateOnSaveMixin`, "
        "`FasterValidateOnSaveMixin` and `SaveInstanceFilesMixin` against plain Django, every "
        "round in one `atomic()`. No goal is set for these: the ratios are the result.",
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
        "Site settings",
        5,
        "One read = get the settings and read the same ten fields, from models of the same ten "
        "fields holding the same values; contenders interleaved, the order rotating every round.",
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
        "Site settings: client tracking",
        13,
        "How long a save in one process takes to reach the others: to the invalidation "
        "listeners alone (a `SET`, then `is_current` turning false in 4 other processes), then "
        "to the example project's 4 gunicorn workers, with client tracking and with the time "
        "window (tracking off).",
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
        "Action tokens",
        7,
        "Create + consume pairs through keel's stores against raw redis-py on the same server; "
        "the order of the contenders rotates every round.",
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
        "Fixtures",
        6,
        "Importing one JSON fixture with keel's `JsonFixtureUpsertCommand` against Django's "
        "`loaddata` of the same file, an `update_or_create` loop (timed on a sample and scaled, "
        "as the table says), Django's own `bulk_create` of the parsed file with no checks, and "
        "PostgreSQL `COPY` (the floor), at three sizes. The goals are for the "
        "100,000-row file; the smaller sizes show how the cost grows.",
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
        "Scale-out and reliability",
        5,
        "The example project's home page under gunicorn (4 sync workers) with and without "
        "Redis, rounds alternating between the two servers; details in "
        "[Scale-out and reliability](reliability.md#load).",
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
        "The systems keel replaces",
        9,
        "codex-django 0.7.0 and pytoolbox 14.12.3, installed from PyPI into the bench "
        "environment and driven through their own public APIs, against keel on the same data "
        "and the same PostgreSQL and Redis servers; contenders interleaved, medians.",
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


# What each section's tables mean, in words that hold whatever the figures of a run.
NOTES: dict[str, list[str]] = {
    "mixins": [
        (
            "keel builds instances the way Django builds them and records nothing while rows "
            "load, so memory per instance is that of a plain instance; the snapshot peers copy "
            "every field at load."
        ),
        (
            "*Load + read* costs more than a plain load because the first read of a `JSONField` "
            "value copies it (the price of seeing in-place edits such as `obj.data['k'] = 1`), "
            "once per instance and field; models without JSON, array or hstore fields read at "
            "plain speed."
        ),
        ("Saving one changed field is cheaper than a plain `save()`: only that column is written."),
    ],
    "mixins_misc": [
        (
            "`BetterUniquenessErrorsMixin` costs a savepoint per save (`SAVEPOINT` + `RELEASE`): "
            "that is what keeps the caller's transaction usable after a duplicate."
        ),
        (
            "`ValidateOnSaveMixin` runs Django's `full_clean()`, which here sends a query per "
            "foreign key, unique field and constraint before each INSERT; "
            "`FasterValidateOnSaveMixin` validates the fields in Python and sends none."
        ),
        (
            "`SaveInstanceFilesMixin` adds one `UPDATE` and a savepoint to the insert of a new "
            "row with a file, in exchange for file paths that contain the pk; a pk with a default"
            " (`UUIDField(default=uuid4)`) avoids the cost."
        ),
    ],
    "site_settings": [
        (
            "A warm read (client tracking or the local window) in `keel.site.cache.read` serves a"
            " private copy of the process copy (a new object, a copy of its attribute dict, a new"
            " `_state`) on the verdict of the last full check, remembered with a change counter "
            "and the earliest deadline the check used: the next read of the versions "
            "(`SITE_SETTINGS_VERIFY_INTERVAL`), the tracking heartbeat, the window's end. A warm "
            "read is then a comparison of the counter, a check that no request memo is open and "
            "one clock read. Everything the full check depends on (the copy, the versions read "
            "from the database, each invalidation, flush, reconnection or loss of the tracking "
            "listener, a publication scheduled in a transaction, a test override, a change of "
            "settings, a fork) moves the counter, and the next read makes the full check again "
            "(see [Site state](site.md)). Measured alone (`timeit`, minimum of repeats, the trees"
            " before and after alternating over four script runs, load average about 4.8): "
            "`load()` went from 1.60 µs to 0.70 µs with client tracking and from 1.35 µs to 0.69 "
            "µs in the local window; reading the ten fields costs about 0.7 µs more."
        ),
        (
            "keel with Redis and django-solo both make one round trip per read, and the round "
            "trip is most of either cost; keel's returns only the generation when the process "
            "copy is current (no transfer, no decoding) where django-solo unpickles a model "
            "instance."
        ),
        (
            "A singleton cached per language pays a lookup of the active language on each read "
            "(Django's `get_language()`, which reads a thread- and task-local)."
        ),
        "django-constance's `RedisBackend` pays one `GET` per field.",
    ],
    "site_tracking": [
        (
            "The goal's measure, for each save and each gunicorn worker: the time from the commit"
            " (the return of `save()`) to the moment after which that worker never answers with "
            "an older name, i.e. the read behind its last stale answer. Each request reads the "
            "settings once, first thing (`bench/tracking_app.py`, inside the request memo, so the"
            " whole page shows that read), and the worker reports the clock just before and just "
            "after that read, on the machine's `CLOCK_MONOTONIC`. The *upper bound* is the end of"
            " the read behind the last stale answer (0 when no read after the commit was stale), "
            "the *lower bound* its start; the two differ by the read itself, microseconds."
        ),
        (
            "A worker that is not asked cannot answer stale: the median gap between two reads of "
            "one worker is the measure's resolution. It is below 50 ms here, so a worker that "
            "kept a stale copy for 50 ms after a commit would most likely have been asked, and "
            "have answered stale, during that time."
        ),
        (
            "With client tracking, a worker turns fresh when its listener thread has read Redis's"
            " invalidation; in a sync gunicorn worker that thread waits for the GIL while the "
            "worker renders a page (at most the interpreter's switch interval, 5 ms), and for a "
            "CPU on a loaded machine."
        ),
        (
            "The time window keeps a copy for `SITE_SETTINGS_LOCAL_TTL` (5 s): its delays spread "
            "over the whole window."
        ),
    ],
    "tokens": [
        (
            "keel's cost over the floor is the work the floor skips: hashing the token, encoding "
            "and checking the payload, decoding it back. Round trips dominate, so this ratio "
            "moves with the machine's load more than any other on the page."
        ),
        (
            "Profiled per step (`perf_counter_ns` around each, cProfile on a store that does no "
            "I/O), keel's own work per pair fell from about 28 µs to 16 µs on a warm loop, and by"
            " more between round trips, where the code runs with cold caches: an HMAC now copies "
            "two SHA-256 states computed once per key instead of setting an OpenSSL HMAC context "
            "up each time (about 10 µs to 3 µs between round trips); `SECRET_KEY` and "
            "`SECRET_KEY_FALLBACKS` are read once per settings change instead of through Django's"
            " lazy settings on every digest; a consume computes a fallback key's digest only "
            "after the current key's missed; stored documents are read with `raw_decode`; `SET` "
            "and `GETDEL` go through redis-py's `execute_command`, without the argument checks of"
            " `set()`. No guarantee changed: the HMAC, the payload checks, one round trip per "
            "create and per consume. No faster JSON library is installed, so none was measured."
        ),
        (
            "The naive manager (the raw token as the key, `GET` then `DEL`) is slower *and* "
            "wrong: under concurrency two requests can both read the payload."
        ),
        (
            "The database store pays two commits per pair (one `INSERT`, one `DELETE … "
            "RETURNING`), each a synchronous WAL flush; it is the default for sites without "
            "Redis."
        ),
    ],
    "fixtures": [
        "An unchanged file costs one query whatever its size (*hash on*).",
        (
            "**`keep_edits` re-imports leave unchanged rows out.** A row whose fixture object is "
            "byte for byte the one the last import wrote (a digest kept with its row state) is "
            "neither validated nor staged: the 1%-changed re-import reads and hashes every row, "
            "but validates, stages and compares only the changed ones. It took 30% of a "
            "`keep_edits` first import on PostgreSQL, 19% on MariaDB and 44% on SQLite in the "
            "first run, 39% on SQLite in the second. On SQLite a forced re-import of the "
            "unchanged file, which stages nothing, already costs 34% of a first import (second "
            "run): reading, decoding and hashing every row of the file is the floor of the "
            "shortcut there, so the 35% goal is not met on SQLite."
        ),
        (
            "`overwrite` re-imports still read, validate and stage every row (the file must win "
            "over any edit, so no row can be left out); they cost about as much as a first "
            "import."
        ),
        (
            "**Where a first import's time goes** (cProfile of a 20,000-row first import on "
            "PostgreSQL, overwrite): reading and decoding the JSON about 20%, validating every "
            "value with its model field about 40%, preparing and copying rows into the staging "
            "table about 17%, the set-based statements that apply it about 16%. The first three "
            "are Python, per row and per value: that is why a first import stays several times "
            "slower than `COPY` of the already parsed file, which checks nothing, and the goal of"
            " 3x `COPY` is not met. On SQLite, `loaddata` is itself fast (one `save()` per row on"
            " a local file), and the 6x goal is not met either. On MariaDB the largest single "
            "cost is staging: mysqlclient's `executemany` escapes every value of every staged row"
            " in Python (about 45% of a 20,000-row first import under cProfile), then InnoDB "
            "fills the temporary table and its indexes; `LOAD DATA LOCAL` would need the "
            "connection opened with local files allowed, which keel does not control."
        ),
        (
            "Peak memory stays flat as the file grows: a first import of 1,000,000 rows (a 283 MB"
            " file) into SQLite peaked at 63 MB of resident memory for the whole process, 53 MB "
            "of it before the import started (`bench/fixtures.py --memory-only --rows 1000000 "
            "--databases sqlite`, an earlier run); the goal of 200 MB is met. That goal is "
            "measured on a first import: a `keep_edits` re-import also holds, while it reads, the"
            " digest and primary key of every row it may leave out, which grows with the table "
            "(not measured at 1,000,000 rows)."
        ),
    ],
    "seeds": [
        (
            "codex-django's `JsonFixtureUpsertCommand` is one `update_or_create` per row outside "
            "any transaction; keel checks every row first, then writes in bulk in one "
            "transaction."
        ),
        (
            "codex-django's Redis managers open a new connection for every operation (no pool); "
            "its token consume is a `GET` then a `DEL`, so two requests can both read the "
            "payload."
        ),
        (
            "pytoolbox's `AutoUpdateFieldsMixin` sends every attribute assignment through a "
            "Python `__setattr__`, including those Django makes while building each instance from"
            " a row, and builds a set of field names per instance: that is its load cost."
        ),
    ],
}


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
    for key, title, order, intro, parts in SECTIONS:
        if only and key not in only:
            continue
        done = []
        for number, (script, *options) in enumerate(parts):
            chosen = shlex.split(options[1 if args.quick else 2 if args.smoke else 0])
            out = RESULTS.parent / f"{key}-{number}.json"
            done.append(run_part(script, chosen, out, args.timeout))
        notes = NOTES.get(key, [])
        sections.append(
            {
                "key": key,
                "title": title,
                "order": order,
                "intro": intro,
                "notes": notes,
                "parts": done,
            }
        )
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
