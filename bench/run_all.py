"""Run every benchmark of ``bench/``, then write ``docs/performance.md`` and its plots.

    .venv-bench/bin/python bench/run_all.py [--quick] [--only PART,...] [--no-write]

``make bench`` (``scripts/bench.sh``) builds the environment and calls this. Each part's own
script runs in a child process with the options listed in ``PARTS``; its printed markdown
(tables of medians and ratios, goal lines) is embedded in the page as printed, its tables are
parsed for the plots and its goal lines for the summary table at the top. A part that fails
or cannot run is reported on the page and in the exit status, never silently dropped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
IMG = DOCS / "img"
RESULTS = ROOT / "build" / "bench" / "results.json"
REDIS_URL = os.environ.get("KEEL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
PG_HOST = os.environ.get("KEEL_BENCH_PG_HOST", "127.0.0.1")


@dataclass
class Part:
    """One run of one script; ``key`` groups the runs of one page section."""

    key: str
    script: str
    options: list[str]
    quick_options: list[str]
    needs: Callable[[], str | None] = lambda: None
    output: str = ""
    error: str = ""
    seconds: float = 0.0
    command: str = ""


@dataclass
class Section:
    key: str
    title: str
    order: int
    intro: str
    parts: list[Part] = field(default_factory=list)


def load_needs() -> str | None:
    if not Path(sys.executable).with_name("gunicorn").exists():
        return "bench/load.py needs gunicorn beside this Python (the `bench` dependency group)"
    return None


SECTIONS = [
    Section(
        "mixins",
        "Model mixins: change tracking",
        4,
        "Loading rows and saving one changed field with keel's `AutoUpdateFieldsMixin` against "
        "plain Django, django-dirtyfields and django-model-utils `FieldTracker`, on SQLite in "
        "memory (so that the Python cost is what is measured) and on PostgreSQL, in the same "
        "run.",
        [
            Part(
                "mixins",
                "mixins.py",
                ["--rows", "10000", "--repeats", "5"],
                ["--rows", "3000", "--repeats", "3"],
            )
        ],
    ),
    Section(
        "mixins_misc",
        "Model mixins: uniqueness, validation, files",
        4,
        "Cost per save of `BetterUniquenessErrorsMixin`, `ValidateOnSaveMixin`, "
        "`FasterValidateOnSaveMixin` and `SaveInstanceFilesMixin` against plain Django, every "
        "round in one `atomic()`. No goal is set for these: the ratios are the "
        "result.",
        [
            Part(
                "mixins_misc",
                "mixins_misc.py",
                ["--db", "postgres", "--rows", "200", "--repeats", "5"],
                ["--db", "postgres", "--rows", "100", "--repeats", "3"],
            )
        ],
    ),
    Section(
        "site_settings",
        "Site settings",
        5,
        "One read = get the settings and read the same ten fields, from models of the same ten "
        "fields holding the same values; contenders interleaved, the order rotating every round.",
        [
            Part(
                "site_settings",
                "site_settings.py",
                [
                    "--reads",
                    "2000",
                    "--repeats",
                    "7",
                    "--redis-url",
                    REDIS_URL,
                    "--pg-host",
                    PG_HOST,
                ],
                [
                    "--reads",
                    "500",
                    "--repeats",
                    "3",
                    "--redis-url",
                    REDIS_URL,
                    "--pg-host",
                    PG_HOST,
                ],
            )
        ],
    ),
    Section(
        "site_tracking",
        "Site settings: client tracking",
        13,
        "How long a save in one process takes to reach the others: to the invalidation "
        "listeners alone (a `SET`, then `is_current` turning false in 4 other processes), then "
        "to the example project's 4 gunicorn workers, with client tracking and with the time "
        "window (tracking off).",
        [
            Part(
                "site_tracking",
                "site_tracking.py",
                ["--rounds", "200", "--changes", "30"],
                ["--rounds", "50", "--changes", "10"],
                needs=load_needs,
            )
        ],
    ),
    Section(
        "tokens",
        "Action tokens",
        7,
        "Create + consume pairs through keel's stores against raw redis-py on the same server; "
        "the order of the contenders rotates every round.",
        [
            Part(
                "tokens",
                "tokens.py",
                [
                    "--pairs",
                    "1000",
                    "--repeats",
                    "9",
                    "--redis-url",
                    REDIS_URL,
                    "--pg-host",
                    PG_HOST,
                ],
                [
                    "--pairs",
                    "200",
                    "--repeats",
                    "3",
                    "--redis-url",
                    REDIS_URL,
                    "--pg-host",
                    PG_HOST,
                ],
            )
        ],
    ),
    Section(
        "fixtures",
        "Fixtures",
        6,
        "Importing one JSON fixture with keel's `JsonFixtureUpsertCommand` against Django's "
        "`loaddata` of the same file, an `update_or_create` loop (timed on a sample and scaled, "
        "as the table says), Django's own `bulk_create` of the parsed file with no checks, and "
        "PostgreSQL `COPY` (the floor), at three sizes. The goals are for the "
        "100,000-row file; the smaller sizes show how the cost grows.",
        [
            Part(
                "fixtures",
                "fixtures.py",
                [
                    "--rows",
                    "1000",
                    "--repeats",
                    "3",
                    "--databases",
                    "postgres",
                    "--pg-host",
                    PG_HOST,
                ],
                [
                    "--rows",
                    "1000",
                    "--repeats",
                    "1",
                    "--databases",
                    "postgres",
                    "--pg-host",
                    PG_HOST,
                ],
            ),
            Part(
                "fixtures",
                "fixtures.py",
                [
                    "--rows",
                    "10000",
                    "--repeats",
                    "3",
                    "--databases",
                    "postgres",
                    "--pg-host",
                    PG_HOST,
                ],
                [
                    "--rows",
                    "10000",
                    "--repeats",
                    "1",
                    "--databases",
                    "postgres",
                    "--pg-host",
                    PG_HOST,
                ],
            ),
            Part(
                "fixtures",
                "fixtures.py",
                [
                    "--rows",
                    "100000",
                    "--repeats",
                    "1",
                    "--loop-sample",
                    "2000",
                    "--databases",
                    "postgres",
                    "--pg-host",
                    PG_HOST,
                ],
                [
                    "--rows",
                    "100000",
                    "--repeats",
                    "1",
                    "--loop-sample",
                    "1000",
                    "--databases",
                    "postgres",
                    "--pg-host",
                    PG_HOST,
                ],
            ),
        ],
    ),
    Section(
        "load",
        "Scale-out and reliability",
        5,
        "The example project's home page under gunicorn (4 sync workers) with and without "
        "Redis, rounds alternating between the two servers; details in "
        "[Scale-out and reliability](reliability.md#load).",
        [
            Part(
                "load",
                "load.py",
                ["--seconds", "5", "--rounds", "2"],
                ["--seconds", "3", "--rounds", "1"],
                needs=load_needs,
            )
        ],
    ),
    Section(
        "seeds",
        "The systems keel replaces",
        9,
        "codex-django 0.7.0 and pytoolbox 14.12.3, installed from PyPI into the bench "
        "environment and driven through their own public APIs, against keel on the same data "
        "and the same PostgreSQL and Redis servers; contenders interleaved, medians.",
        [
            Part(
                "seeds",
                "seeds.py",
                [
                    "--rows",
                    "2000",
                    "--fixture-repeats",
                    "3",
                    "--repeats",
                    "7",
                    "--redis-url",
                    REDIS_URL,
                    "--pg-host",
                    PG_HOST,
                ],
                [
                    "--rows",
                    "500",
                    "--fixture-repeats",
                    "1",
                    "--repeats",
                    "3",
                    "--reads",
                    "300",
                    "--pairs",
                    "100",
                    "--load-rows",
                    "2000",
                    "--saves",
                    "100",
                    "--redis-url",
                    REDIS_URL,
                    "--pg-host",
                    PG_HOST,
                ],
            )
        ],
    ),
]


# What each section's tables mean, in words that hold whatever the figures of a run.
NOTES: dict[str, list[str]] = {
    "mixins": [
        "keel builds instances the way Django builds them and records nothing while rows "
        "load, so memory per instance is that of a plain instance; the snapshot peers copy "
        "every field at load.",
        "*Load + read* costs more than a plain load because the first read of a `JSONField` "
        "value copies it (the price of seeing in-place edits such as `obj.data['k'] = 1`), "
        "once per instance and field; models without JSON, array or hstore fields read at "
        "plain speed.",
        "Saving one changed field is cheaper than a plain `save()`: only that column is written.",
    ],
    "mixins_misc": [
        "`BetterUniquenessErrorsMixin` costs a savepoint per save (`SAVEPOINT` + `RELEASE`): "
        "that is what keeps the caller's transaction usable after a duplicate.",
        "`ValidateOnSaveMixin` runs Django's `full_clean()`, which here sends a query per "
        "foreign key, unique field and constraint before each INSERT; "
        "`FasterValidateOnSaveMixin` validates the fields in Python and sends none.",
        "`SaveInstanceFilesMixin` adds one `UPDATE` and a savepoint to the insert of a new "
        "row with a file, in exchange for file paths that contain the pk; a pk with a default "
        "(`UUIDField(default=uuid4)`) avoids the cost.",
    ],
    "site_settings": [
        "keel with Redis and django-solo both make one round trip per read, and the round "
        "trip is most of either cost; keel's returns only the generation when the process "
        "copy is current (no transfer, no decoding) where django-solo unpickles a model "
        "instance. Only skipping the round trip, which the local window does, buys more.",
        "A singleton cached per language pays a lookup of the active language on each read.",
        "django-constance's `RedisBackend` pays one `GET` per field.",
    ],
    "tokens": [
        "keel's cost over the floor is the work the floor skips: hashing the token, encoding "
        "and checking the payload, decoding it back. Round trips dominate, so this ratio "
        "moves with the machine's load more than any other on the page.",
        "The naive manager (the raw token as the key, `GET` then `DEL`) is slower *and* "
        "wrong: under concurrency two requests can both read the payload.",
        "The database store pays two commits per pair (one `INSERT`, one "
        "`DELETE … RETURNING`), each a synchronous WAL flush; it is the default for sites "
        "without Redis.",
    ],
    "fixtures": [
        "An unchanged file costs one query whatever its size (*hash on*); a re-import with "
        "1% changed writes only the changed rows.",
        "*Django bulk_create of the parsed file* is Django's own insert of prebuilt "
        "instances, with no reading, checks or diff; *re-import unchanged, hash off* measures "
        "keel's reading, checking and diffing with no write. Together they show where the "
        "first import's time goes.",
    ],
    "seeds": [
        "codex-django's `JsonFixtureUpsertCommand` is one `update_or_create` per row outside "
        "any transaction; keel checks every row first, then writes in bulk in one transaction.",
        "codex-django's Redis managers open a new connection for every operation (no pool); "
        "its token consume is a `GET` then a `DEL`, so two requests can both read the payload.",
        "pytoolbox's `AutoUpdateFieldsMixin` sends every attribute assignment through a Python "
        "`__setattr__`, including those Django makes while building each instance from a "
        "row, and builds a set of field names per instance: that is its load cost.",
    ],
}


# --------------------------------------------------------------------------- parsing


Table = tuple[list[str], list[list[str]]]


def tables(text: str) -> list[Table]:
    """Every markdown table in ``text``: (header cells, body rows of cells)."""
    found: list[Table] = []
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2:
            cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in block]
            found.append((cells[0], cells[2:]))
        block = []
    return found


def number(cell: str) -> float | None:
    match = re.search(r"-?[\d,]*\.?\d+", cell)
    if not match:
        return None
    return float(match.group().replace(",", ""))


def table_with(found: list[Table], first_header: str) -> Table | None:
    for header, rows in found:
        if header and header[0].lower() == first_header:
            return header, rows
    return None


@dataclass
class Goal:
    order: int
    part: str
    goal: str
    measured: str
    met: bool


GOAL_LINE = re.compile(
    r"Goal:?\s+(?P<goal>.+?):\s+"
    r"(?P<measured>[^:]+?)\s*(?:→|,)\s*(?P<met>NOT met|met)\b"
)
SUBGOAL = re.compile(r"(?P<goal>Consume is one round trip): (?P<met>NOT met|met) \((?P<n>[^)]*)\)")


def goals_of(section: Section, part: Part) -> list[Goal]:
    found: list[Goal] = []
    label = section.title
    for line in part.output.splitlines():
        if line.startswith("|"):
            continue
        for match in GOAL_LINE.finditer(line):
            found.append(
                Goal(
                    section.order,
                    label,
                    match["goal"],
                    match["measured"].strip(" ."),
                    match["met"] == "met",
                )
            )
        for match in SUBGOAL.finditer(line):
            found.append(
                Goal(section.order, label, match["goal"], match["n"], match["met"] == "met")
            )
    parsed = tables(part.output)
    goal_table = table_with(parsed, "goal")
    # The fixture goals are set for the 100,000-row file; smaller sizes only show the trend.
    if goal_table and not (section.key == "fixtures" and "100,000 rows" not in part.output):
        rows_match = re.search(r"([\d,]+) rows", part.output)
        size = f" ({rows_match.group(1)} rows)" if rows_match else ""
        for row in goal_table[1]:
            found.append(
                Goal(section.order, label + size, row[0], row[1], row[2].strip().lower() == "met")
            )
    if section.key == "site_settings":
        contenders = table_with(parsed, "contender")
        for row in contenders[1] if contenders else []:
            if row[0] == "keel, Redis":
                redis_trips = number(row[3]) or 0.0
                found.append(
                    Goal(
                        section.order,
                        label,
                        "at most 1 network round trip per read",
                        row[3],
                        redis_trips <= 1,
                    )
                )
    return found


# --------------------------------------------------------------------------- machine


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


# --------------------------------------------------------------------------- running


def run_part(part: Part, quick: bool, timeout: float) -> None:
    reason = part.needs()
    options = part.quick_options if quick else part.options
    part.command = shlex.join([".venv-bench/bin/python", f"bench/{part.script}", *options])
    if reason:
        part.error = f"SKIPPED: {reason}"
        print(f"*** {part.error}", file=sys.stderr, flush=True)
        return
    print(f"--> {part.command}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / part.script), *options],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        part.error = f"FAILED: no result within {timeout:.0f} s"
    else:
        part.output = done.stdout.strip()
        if done.returncode:
            part.error = f"FAILED with exit status {done.returncode} (its stderr is above)"
    part.seconds = time.perf_counter() - started
    status = part.error or "ok"
    print(f"<-- bench/{part.script}: {status} in {part.seconds:.0f} s", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- plots


def plot_all(done: dict[str, Section]) -> list[tuple[str, str]]:
    """Write the PNGs; return (file name, alt text) of each one written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        print(f"*** SKIPPED plots: matplotlib is not installed ({exc})", file=sys.stderr)
        return []
    IMG.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, str]] = []
    seeds = done.get("seeds")

    def seed_table(title_part: str) -> Table | None:
        text = seeds.parts[0].output if seeds else ""
        for chunk in text.split("#### ")[1:]:
            if chunk.startswith(title_part):
                found = tables(chunk)
                return found[0] if found else None
        return None

    # Fixtures: cost versus size.
    fixtures = done.get("fixtures")
    series: dict[str, dict[int, float]] = {}
    for part in fixtures.parts if fixtures else []:
        size_match = re.search(r"([\d,]+) rows, median", part.output)
        contenders = table_with(tables(part.output), "contender")
        if not size_match or not contenders:
            continue
        size = int(size_match.group(1).replace(",", ""))
        for row in contenders[1]:
            # The loop is timed on a sample at the larger sizes: one series all the same.
            name = re.sub(r" \([\d,]+ rows, x[\d.]+\)", "", row[0])
            seconds = number(row[1])
            if seconds:
                series.setdefault(name, {})[size] = seconds
    codex_fixture = seed_table("Fixture upsert")
    codex_rows = re.search(r"against keel, ([\d,]+) rows", seeds.parts[0].output) if seeds else None
    if series:
        fig, ax = plt.subplots(figsize=(11, 5.5))
        for name, points in series.items():
            if "hash on" in name:
                style = ":"
            elif "keel" in name:
                style = "-"
            else:
                style = "--"
            sizes = sorted(points)
            ax.plot(sizes, [points[s] for s in sizes], style, marker="o", label=name)
        if codex_fixture and codex_rows:
            size = int(codex_rows.group(1).replace(",", ""))
            for row in codex_fixture[1]:
                if row[0] == "codex: first import":
                    ax.plot(
                        [size],
                        [number(row[1])],
                        "k*",
                        markersize=12,
                        label=f"codex-django JsonFixtureUpsertCommand ({size:,} rows, seeds run)",
                    )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows in the fixture file")
        ax.set_ylabel("seconds (median, log scale)")
        ax.set_title("Fixture import on PostgreSQL: cost versus size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        fig.tight_layout()
        fig.savefig(IMG / "bench-fixtures.png", dpi=110)
        plt.close(fig)
        written.append(("bench-fixtures.png", "Fixture import cost versus size"))

    def barh(
        filename: str, title: str, xlabel: str, bars: list[tuple[str, float, str]], log: bool
    ) -> None:
        if not bars:
            return
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(bars) + 1.4))
        colors = {"keel": "#2a7ab0", "peer": "#999999", "seed": "#d0703c", "floor": "#4a9a4a"}
        names = [b[0] for b in bars]
        values = [b[1] for b in bars]
        ax.barh(names, values, color=[colors[b[2]] for b in bars])
        for y, value in enumerate(values):
            shown = f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
            ax.text(value, y, f" {shown}", va="center", fontsize=8)
        ax.invert_yaxis()
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(IMG / filename, dpi=110)
        plt.close(fig)
        written.append((filename, title))

    def kind(name: str) -> str:
        lowered = name.lower()
        if "codex" in lowered or "pytoolbox" in lowered:
            return "seed"
        if "floor" in lowered or lowered.startswith("raw"):
            return "floor"
        return "keel" if lowered.startswith("keel") else "peer"

    # Site settings: read cost per path.
    settings_bars: list[tuple[str, float, str]] = []
    section = done.get("site_settings")
    found = table_with(tables(section.parts[0].output), "contender") if section else None
    for row in found[1] if found else []:
        value = number(row[1])
        if value:
            settings_bars.append((row[0], value, kind(row[0])))
    codex_settings = seed_table("Site settings read")
    for row in codex_settings[1] if codex_settings else []:
        value = number(row[1])
        if value and "codex" in row[0]:
            settings_bars.append((row[0] + " *", value, "seed"))
    barh(
        "bench-site-settings.png",
        "Site settings: cost of one read of ten fields",
        "µs per read (median, log scale; * from the seeds run)",
        settings_bars,
        log=True,
    )

    # Tokens: throughput.
    token_bars: list[tuple[str, float, str]] = []
    section = done.get("tokens")
    found = table_with(tables(section.parts[0].output), "contender") if section else None
    for row in found[1] if found else []:
        value = number(row[1])
        if value:
            token_bars.append((row[0], value, kind(row[0])))
    codex_tokens = seed_table("Action tokens")
    for row in codex_tokens[1] if codex_tokens else []:
        value = number(row[1])
        if value:
            token_bars.append((row[0] + " *", value, kind(row[0])))
    barh(
        "bench-tokens.png",
        "Action tokens: create + consume throughput",
        "pairs per second (median; * from the seeds run)",
        token_bars,
        log=False,
    )

    # Mixins: load overhead.
    mixin_bars: list[tuple[str, float, str]] = []
    section = done.get("mixins")
    found = table_with(tables(section.parts[0].output), "contender") if section else None
    for row in found[1] if found else []:
        value = number(row[2])
        if value:
            mixin_bars.append((row[0] + " (SQLite)", value, kind(row[0])))
    seed_mixins = seed_table("Model mixins")
    for row in seed_mixins[1] if seed_mixins else []:
        value = number(row[2])
        if value:
            mixin_bars.append((row[0] + " (PostgreSQL) *", value, kind(row[0])))
    barh(
        "bench-mixins.png",
        "Change tracking: cost of loading rows, times plain Django",
        "load time / plain Django load time (median; * from the seeds run)",
        mixin_bars,
        log=False,
    )
    return written


# --------------------------------------------------------------------------- page


def embed(output: str) -> list[str]:
    """A script's printed markdown, with its plain lines made paragraphs of their own."""
    lines: list[str] = []
    previous_table = False
    for line in output.splitlines():
        is_table = line.startswith("|")
        if not line.strip():
            if lines and lines[-1] != "":
                lines.append("")
        elif is_table:
            if not previous_table and lines and lines[-1] != "":
                lines.append("")
            lines.append(line)
        else:
            if previous_table or (lines and lines[-1] != ""):
                lines.append("")
            heading = re.match(r"(#+) (.*)", line)
            if heading and len(heading[1]) <= 2:
                # A script's own title line: the page has its own headings.
                lines.append(heading[2])
            elif heading:
                lines.append(f"### {heading[2]}")
            else:
                lines.append(line)
            lines.append("")
        previous_table = is_table
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def write_page(
    args: argparse.Namespace,
    machine: str,
    loads: tuple[str, str],
    total: float,
    goals: list[Goal],
    plots: list[tuple[str, str]],
    skipped: list[str],
) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        "Every figure on this page was produced by one command, in one run:",
        "",
        "```console",
        "$ make bench",
        "```",
        "",
        "(`scripts/bench.sh` builds `.venv-bench`, then runs "
        f"`{shlex.join(['.venv-bench/bin/python', 'bench/run_all.py', *args.argv])}`, which runs "
        "each script below with the options shown above its tables and writes this page and "
        "the plots.)",
        "",
        f"- **Date:** {now}; the benchmarks took **{total / 60:.1f} minutes** (building "
        "`.venv-bench` from nothing adds about one minute with a warm pip cache).",
        f"- **Machine:** {machine}.",
        f"- **Load average** at the start and at the end of the run: {loads[0]} / {loads[1]}. "
        "On a shared machine absolute times move with the load; the ratios, measured against "
        "baselines in the same run with the contenders interleaved, are what to read.",
        "- Medians over repeated rounds in one process run; every table names its rounds. "
        "Repeat counts are reduced so that the whole run stays under 15 minutes: the fixtures "
        "at 100,000 rows run once (one round), the `update_or_create` loop is timed on a "
        "sample (2,000 rows of the 100,000-row file, 5,000 of the 10,000-row file) and scaled, "
        "and the other parts use 5 to 9 rounds."
        + (" This run used `--quick` (fewer rounds still)." if args.quick else ""),
        "",
        "## Goals",
        "",
        "keel's performance goals, as measured in this run.",
        "",
        "| part | goal | measured | met |",
        "|---|---|---|---|",
    ]
    for goal in goals:
        status = "**met**" if goal.met else "**not met**"
        lines.append(f"| {goal.part} | {goal.goal} | {goal.measured} | {status} |")
    if not goals:
        lines.append("| — | no goal could be read: see the sections below | — | — |")
    lines.append("")
    if skipped:
        lines += ["Skipped or failed in this run:", ""]
        lines += [f"- {item}" for item in skipped]
        lines.append("")
    if plots:
        lines += ["## Plots", ""]
        for filename, alt in plots:
            lines += [f"![{alt}](img/{filename})", ""]
        lines += [
            "Blue: keel; grey: peers; green: raw floors; orange: the systems keel replaces "
            "(codex-django, pytoolbox). Bars marked * come from `bench/seeds.py`, a separate "
            "process of the same run.",
            "",
        ]
    for section in SECTIONS:
        if args.only and section.key not in args.only:
            continue
        lines += [f"## {section.title}", "", section.intro, ""]
        for part in section.parts:
            lines += ["```console", f"$ {part.command}", "```", ""]
            if part.error:
                lines += [f"**{part.error}**", ""]
            if part.output:
                lines += [*embed(part.output), ""]
        if NOTES.get(section.key) and any(part.output for part in section.parts):
            lines += [f"- {note}" for note in NOTES[section.key]]
            lines.append("")
    DOCS.joinpath("performance.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated section keys")
    parser.add_argument("--no-write", action="store_true", help="print, write no page or plot")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per script")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help=f"rewrite the page and plots from the last run's {RESULTS.relative_to(ROOT)}",
    )
    args = parser.parse_args()
    args.only = [key for key in args.only.split(",") if key]
    if args.render_only:
        saved = json.loads(RESULTS.read_text(encoding="utf-8"))
        args.argv, args.quick, args.only = saved["argv"], saved["quick"], saved["only"]
        machine, loads, total = saved["machine"], tuple(saved["loads"]), saved["total"]
        for section in SECTIONS:
            for part, stored in zip(
                section.parts, saved["parts"].get(section.key, []), strict=False
            ):
                part.command, part.output, part.error = stored
    else:
        args.argv = sys.argv[1:]
        started = time.perf_counter()
        load_start = load_average()
        machine = machine_line()
        print(f"machine: {machine}; load average {load_start}", file=sys.stderr)
        for section in SECTIONS:
            if args.only and section.key not in args.only:
                continue
            for part in section.parts:
                run_part(part, args.quick, args.timeout)
        total = time.perf_counter() - started
        loads = (load_start, load_average())
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "argv": args.argv,
                    "quick": args.quick,
                    "only": args.only,
                    "machine": machine,
                    "loads": loads,
                    "total": total,
                    "parts": {
                        s.key: [[p.command, p.output, p.error] for p in s.parts] for s in SECTIONS
                    },
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    done: dict[str, Section] = {}
    goals: list[Goal] = []
    skipped: list[str] = []
    for section in SECTIONS:
        if args.only and section.key not in args.only:
            continue
        for part in section.parts:
            if part.error:
                skipped.append(f"`{part.command}`: {part.error}")
            goals += goals_of(section, part)
            for line in part.output.splitlines():
                if line.startswith("- SKIPPED "):
                    skipped.append(line[2:])
        done[section.key] = section
    goals.sort(key=lambda goal: goal.order)
    if args.no_write:
        for section in done.values():
            for part in section.parts:
                print(part.output, end="\n\n")
    else:
        plots = plot_all(done)
        write_page(args, machine, loads, total, goals, plots, skipped)
    print(f"\nGoals ({len(goals)}):", file=sys.stderr)
    for goal in goals:
        mark = "met    " if goal.met else "NOT met"
        print(
            f"  [{mark}] {goal.part}: {goal.goal}: {goal.measured}",
            file=sys.stderr,
        )
    for item in skipped:
        print(f"  *** {item}", file=sys.stderr)
    print(f"bench: whole run {total / 60:.1f} min", file=sys.stderr)
    failed = [p for s in done.values() for p in s.parts if p.error.startswith("FAILED")]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
