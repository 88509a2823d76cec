"""What every script of ``bench/`` shares: setup, interleaved timing, statistics, JSON out.

A script declares its contenders and cases, times them with ``interleave()``, and records
what it measured in a ``Report``: text, tables of raw values with a format per column,
goals, and the series the plots draw. ``Report.emit()`` writes the JSON that
``bench/render.py`` turns into ``docs/performance.md`` (``--json PATH``) and prints the same
content as markdown for a reader at the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

REDIS_URL = os.environ.get("KEEL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
PG_HOST = os.environ.get("KEEL_BENCH_PG_HOST", "127.0.0.1")


# --------------------------------------------------------------------------- setup


def options(doc: str | None, **defaults: Any) -> argparse.Namespace:
    """The parsed command line: the options every script takes, and one ``--name-with-dashes``
    per keyword (its default's type; a ``False`` default makes a flag)."""
    made = argparse.ArgumentParser(description=doc)
    made.add_argument("--json", type=Path, help="write the results to this file")
    for name, default in {"redis_url": REDIS_URL, "pg_host": PG_HOST, **defaults}.items():
        flag = "--" + name.replace("_", "-")
        if default is False:
            made.add_argument(flag, action="store_true")
        else:
            made.add_argument(flag, type=type(default), default=default, help=f"({default!r})")
    return made.parse_args()


def database(kind: str, name: str, host: str = PG_HOST, *, fresh: bool = False) -> dict[str, Any]:
    """A ``DATABASES`` entry for ``kind``, the database created (or recreated if ``fresh``);
    SQLite is in memory without a ``name``, else a file of the temporary directory."""
    if kind == "sqlite":
        path = Path(tempfile.gettempdir()) / f"{name}.sqlite3"
        if name and fresh:
            path.unlink(missing_ok=True)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path) if name else ":memory:"}
    if fresh:
        drop(kind, name, host)
    if kind == "postgres":
        with postgres(host) as c:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                c.execute(f'CREATE DATABASE "{name}"')
        options = {"USER": "postgres", "CONN_MAX_AGE": None}
    elif kind == "mysql":
        with mysql(host) as c:
            c.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        options = {"USER": "root", "OPTIONS": {"charset": "utf8mb4"}}
    else:
        raise SystemExit(f"the database must be sqlite, postgres or mysql, got {kind!r}")
    engine = "postgresql" if kind == "postgres" else kind
    return {"ENGINE": f"django.db.backends.{engine}", "NAME": name, "HOST": host, **options}


def postgres(host: str) -> Any:
    import psycopg

    return psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True)


def mysql(host: str) -> Any:
    from contextlib import closing

    import MySQLdb

    return closing(MySQLdb.connect(host=host, user="root"))


def drop(kind: str, name: str, host: str = PG_HOST) -> None:
    """Drop the database ``name`` of PostgreSQL or MariaDB, if it exists."""
    if kind == "postgres":
        with postgres(host) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    elif kind == "mysql":
        with mysql(host) as c:
            c.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


def setup_django(databases: Mapping[str, Any], apps: tuple[str, ...] = (), **extra: Any) -> None:
    """``settings.configure()`` with keel installed, then ``django.setup()``."""
    import django
    from django.conf import settings

    defaults = {
        "USE_TZ": True,
        "SECRET_KEY": "keel-bench-not-secret",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
    }
    settings.configure(
        DATABASES=dict(databases),
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "keel", *apps],
        **(defaults | extra),
    )
    django.setup()


def key_prefix() -> str:
    """A Redis key prefix of this run alone: [`clean_redis`][] removes its keys."""
    return f"keelbench-{uuid.uuid4().hex[:8]}"


def clean_redis(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def counting_connection() -> type[Any]:
    """A redis-py connection class that counts the commands it sends and the replies it
    reads (one of each per round trip), for every connection of the class together."""
    import redis

    class Counting(redis.Connection):
        sent = replies = 0

        def send_command(self, *args: Any, **kwargs: Any) -> None:
            Counting.sent += 1
            super().send_command(*args, **kwargs)

        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            Counting.replies += 1
            return super().read_response(*args, **kwargs)

    return Counting


def redis_version(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return f"Redis {client.info('server')['redis_version']}"
    finally:
        client.close()


def versions(*parts: str) -> str:
    """``Python x, Django y`` and the ``parts`` given, joined for a table's caption."""
    import django

    return ", ".join(
        [f"Python {platform.python_version()}", f"Django {django.get_version()}", *parts]
    )


def db_version(alias: str = "default") -> str:
    from django.db import connections

    conn = connections[alias]
    return f"{conn.display_name} {'.'.join(map(str, conn.get_database_version()))}"


# --------------------------------------------------------------------------- timing


@dataclass
class Timings:
    """Seconds per unit of work of each contender, one value per round."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.wall[name])

    def cpu_median(self, name: str) -> float:
        return statistics.median(self.cpu[name])

    def paired(self, name: str, base: str) -> float:
        """Median over rounds of base / name, each round's pair run side by side."""
        pairs = zip(self.wall[base], self.wall[name], strict=True)
        return statistics.median(b / n for b, n in pairs)


def interleave(
    contenders: Mapping[str, Callable[[], Any]],
    rounds: int,
    *,
    per: int = 1,
    warmup: bool = False,
    around: Callable[[], AbstractContextManager[Any]] = nullcontext,
    before: Callable[[], Any] = lambda: None,
    self_timed: bool = False,
) -> Timings:
    """Run every contender once per round, the order rotating every round.

    Round-trip times drift over seconds with the machine's load: interleaving in small rounds
    gives every contender the same moments. ``per`` is the units of work in one call, so that
    the timings are per unit; ``around`` wraps each timed call and is timed with it (e.g.
    ``transaction.atomic``, its commit included); ``before`` runs untimed before each call.
    A contender that must prepare inside its call (enter its settings, warm its cache) times
    itself: with ``self_timed`` its return value is its seconds per unit.
    """
    names = list(contenders)
    if warmup:
        for run in contenders.values():
            run()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            before()
            started, started_cpu = time.perf_counter(), time.process_time()
            with around():
                result = contenders[name]()
            wall[name].append(result if self_timed else (time.perf_counter() - started) / per)
            cpu[name].append((time.process_time() - started_cpu) / per)
    return Timings(wall, cpu)


def timed(run: Callable[[], Any], repeats: int = 1) -> float:
    """Seconds per call of ``run``, over ``repeats`` calls."""
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - started) / repeats


def recorded(times: dict[str, list[float]], name: str, run: Callable[[], Any]) -> Any:
    """Call ``run``, add its seconds to ``times[name]`` and return its result."""
    started = time.perf_counter()
    result = run()
    times.setdefault(name, []).append(time.perf_counter() - started)
    return result


def medians(times: Mapping[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in times.items()}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def load_average() -> float:
    return os.getloadavg()[0]


# --------------------------------------------------------------------------- report

GOAL_COLUMNS = ["goal", "measured", "met"]


@dataclass
class Report:
    """What one script measured: blocks (text or a table) shown in order, goals, plot series,
    skips."""

    script: str
    argv: list[str] = field(default_factory=lambda: sys.argv[1:])
    blocks: list[dict[str, Any]] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def text(self, line: str) -> None:
        self.blocks.append({"text": line})

    def heading(self, line: str) -> None:
        self.text(f"### {line}")

    def table(self, columns: list[str] | str, rows: list[list[Any]], *, caption: str = "") -> None:
        """A table of raw values: ``columns`` are titles (a list, or one string separated by
        ``;``), ``"title|{:format}"`` for a column of numbers (right-aligned, formatted when
        shown); ``None`` shows as a dash."""
        if caption:
            self.text(caption)
        if isinstance(columns, str):
            columns = [column.strip() for column in columns.split(";")]
        self.blocks.append({"columns": columns, "rows": rows})

    def goal(
        self, goal: str, measured: str, met: bool, *, show: str = "line", **where: Any
    ) -> None:
        """A goal: ``show`` is ``line`` (a sentence), ``table`` (a row of a goal table, the
        goals in a row gathered) or ``summary`` (only in the page's summary of goals);
        ``part=`` qualifies the section's name there, ``summary=False`` leaves it out."""
        where = {"part": "", "summary": True} | where
        self.goals.append({"goal": goal, "measured": measured, "met": met, "show": show, **where})
        shown = "met" if met else "NOT met"
        if show == "line":
            self.text(f"Goal {goal}: {measured} → {shown}.")
        elif show == "table":
            if not self.blocks or self.blocks[-1].get("columns") != GOAL_COLUMNS:
                self.table(list(GOAL_COLUMNS), [])
            self.blocks[-1]["rows"].append([goal, measured, shown])

    def skip(self, reason: str) -> None:
        self.skipped.append(reason)
        self.text(f"- SKIPPED {reason}")

    def emit(self, path: Path | None) -> None:
        """Write the JSON to ``path`` (if given) and print the markdown."""
        document = asdict(self)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
        print("\n".join(markdown(document)))


def table_rows(block: Mapping[str, Any]) -> Iterator[str]:
    columns = [(*column.split("|", 1), "")[:2] for column in block["columns"]]
    yield "| " + " | ".join(title for title, _ in columns) + " |"
    yield "|" + "".join("---:|" if fmt else "---|" for _, fmt in columns)
    for row in block["rows"]:
        cells = [
            "—" if value is None else fmt.format(value) if fmt else str(value)
            for (_, fmt), value in zip(columns, row, strict=True)
        ]
        yield "| " + " | ".join(cells) + " |"


def markdown(document: Mapping[str, Any]) -> list[str]:
    """The markdown of one script's results, paragraphs and tables separated by blank lines."""
    lines: list[str] = []
    for block in document["blocks"]:
        lines += [block["text"]] if "text" in block else list(table_rows(block))
        lines.append("")
    return lines[:-1]
