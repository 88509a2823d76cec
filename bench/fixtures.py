"""Fixture imports: keel's staged import against loaddata, an update_or_create loop and COPY.

    .venv/bin/python bench/fixtures.py [--rows 100000] [--repeats 3] [--loop-sample 5000]
                                       [--databases postgres,sqlite,mysql] [--pg-host 127.0.0.1]
                                       [--mysql-host 127.0.0.1]

One JSON fixture of ``--rows`` rows (Django's format, 7 fields, values as strings where a
hand-written fixture has them) and a copy with 1% of the rows changed. Per database, in rounds
whose order rotates every repeat (so that drift in the machine's load hits all alike):

- ``keel`` (one sequence): first import into an empty table; re-import of the 1%-changed file;
  re-import unchanged with ``--force`` (hash off: every row read and diffed); re-import
  unchanged with the hash on (skipped after one query).
- ``loaddata``: Django's ``loaddata`` of the same file into an empty table.
- ``update_or_create loop``: one ``update_or_create`` per row in one transaction, the anchor's
  way; timed on the first ``--loop-sample`` rows and scaled to ``--rows`` (said in the table).
- floor: PostgreSQL ``COPY … FROM STDIN`` (SQLite, MariaDB: ``executemany`` of one INSERT), all
  including ``json.load`` of the file: the cheapest way to get the file into the table.
- ``Django bulk_create of the parsed file``: ``json.load``, one instance per row, one
  ``bulk_create``: Django's own insert path with no validation, diff or counters, to show how
  much of keel's first import is that path.

Peak memory of a first import is measured in a child process (``resource.getrusage``: peak
RSS of the whole process, Django included). Databases: ``bench_keel_fixtures`` on PostgreSQL
and MariaDB/MySQL (user root, no password) and a temporary SQLite file, all dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.apps import AppConfig

from cases import make_model, row_fields, write_fixture
from harness import (
    ROOT,
    Report,
    database,
    drop_postgres,
    interleave,
    parser,
    setup_django,
    timed,
    versions,
)

# KEEL_BENCH_DB_SUFFIX keeps runs started side by side on one server apart.
PG_DB = "bench_keel_fixtures" + os.environ.get("KEEL_BENCH_DB_SUFFIX", "")
APP = "keel_bench_fixtures"


class BenchConfig(AppConfig):
    name = APP
    label = APP
    path = str(ROOT / "bench")


_module = types.ModuleType(APP)
_module.BenchConfig = BenchConfig  # type: ignore[attr-defined]
sys.modules[APP] = _module


def configure(args: argparse.Namespace, databases: list[str], *, fresh: bool = False) -> None:
    config: dict[str, dict[str, Any]] = {}
    for alias in databases:
        if alias == "sqlite":
            config[alias] = {"ENGINE": "django.db.backends.sqlite3", "NAME": args.sqlite_path}
        else:
            host = args.pg_host if alias == "postgres" else args.mysql_host
            config[alias] = database(alias, PG_DB, host, fresh=fresh)
    config["default"] = dict(config[databases[0]])
    setup_django(config, (f"{APP}.BenchConfig",), KEEL={})


def define_model() -> type[Any]:
    from django.db import models

    return make_model("BenchRow", (models.Model,), row_fields(), APP, create=False)


def import_command(model: type[Any], path: Path, policy: str = "overwrite") -> Any:
    from keel.fixtures import JsonFixtureUpsertCommand

    class Command(JsonFixtureUpsertCommand):
        fixture_key = "bench.rows"
        model_class = model
        lookup_field = "key"
        edit_policy = policy  # type: ignore[assignment]

    command = Command()
    command.fixture_path = path  # type: ignore[misc]
    return command


def run_keel(
    model: type[Any], path: Path, alias: str, *args: str, policy: str = "overwrite"
) -> Any:
    from django.core.management import call_command

    command = import_command(model, path, policy)
    call_command(command, *args, database=alias, verbosity=0)
    return command.import_result


def truncate(model: type[Any], alias: str) -> None:
    from django.db import connections

    from keel.models import FixtureRowState, FixtureState

    connection = connections[alias]
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(model._meta.db_table)
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {table} RESTART IDENTITY")
        else:
            cursor.execute(f"DELETE FROM {table}")
    FixtureState.objects.using(alias).all().delete()
    FixtureRowState.objects.using(alias).all().delete()


def loop_import(model: type[Any], path: Path, alias: str, sample: int) -> None:
    from django.db import transaction

    with path.open() as stream:
        rows = json.load(stream)[:sample]
    manager = model.objects.db_manager(alias)
    with transaction.atomic(using=alias):
        for row in rows:
            fields = dict(row["fields"])
            manager.update_or_create(key=fields.pop("key"), defaults=fields)


def floor_import(model: type[Any], path: Path, alias: str) -> None:
    from django.db import connections, transaction

    with path.open() as stream:
        rows = json.load(stream)
    names = ["key", "title", "body", "price", "active", "day", "rank"]
    connection = connections[alias]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(name) for name in names)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    fields = row["fields"]
                    copy.write_row([fields[name] for name in names])
        else:
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({', '.join('%s' for _ in names)})",
                [[row["fields"][name] for name in names] for row in rows],
            )


def bulk_create_floor(model: type[Any], path: Path, alias: str) -> None:
    """Django's own insert path alone: instances built from the parsed file, one bulk_create."""
    from django.db import transaction

    with path.open() as stream:
        rows = json.load(stream)
    objs = [model(**row["fields"]) for row in rows]
    with transaction.atomic(using=alias):
        model.objects.db_manager(alias).bulk_create(objs, batch_size=1000)


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB.

    Linux's VmHWM belongs to the process image, so it starts afresh in a new program;
    ru_maxrss (the fallback elsewhere) may carry the parent's peak across exec.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_memory(args: argparse.Namespace) -> None:
    """Child process: one first import; prints peak RSS before and after it, in MB."""
    configure(args, [args.child_database])
    model = define_model()
    truncate(model, args.child_database)
    before = peak_rss_mb()
    result = run_keel(model, Path(args.child_memory), args.child_database, "--force")
    after = peak_rss_mb()
    print(json.dumps({"before": before, "peak": after, "created": result.created}))


def measure_memory(args: argparse.Namespace, alias: str, path: Path) -> dict[str, float]:
    child = ["--child-memory", str(path), "--child-database", alias, "--pg-host", args.pg_host]
    child += ["--mysql-host", args.mysql_host, "--sqlite-path", args.sqlite_path]
    output = subprocess.run(
        [sys.executable, __file__, *child], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def prepare(model: type[Any], alias: str) -> None:
    from django.core.management import call_command
    from django.db import connections

    with connections[alias].schema_editor() as editor:
        editor.create_model(model)
    call_command("migrate", "keel", database=alias, verbosity=0)


def bench_database(
    args: argparse.Namespace,
    report: Report,
    model: type[Any],
    alias: str,
    file_a: Path,
    file_b: Path,
) -> None:
    from django.core.management import call_command
    from django.db import connections

    prepare(model, alias)
    times: dict[str, list[float]] = {}
    scale = args.rows / min(args.loop_sample, args.rows)
    floor_name = {
        "postgres": "PostgreSQL COPY (floor)",
        "sqlite": "SQLite executemany (floor)",
        "mysql": "MariaDB executemany (floor)",
    }[alias]
    loop_name = (
        f"update_or_create loop ({min(args.loop_sample, args.rows):,} rows, x{scale:g})"
        if scale > 1
        else "update_or_create loop"
    )

    def sequence(policy: str, steps: list[tuple[str, Path, tuple[str, ...], str, int]]) -> None:
        """The imports of one policy in order, each checked by what it reports."""
        truncate(model, alias)
        for name, path, options, field, expected in steps:
            started = time.perf_counter()
            result = run_keel(model, path, alias, *options, policy=policy)
            times.setdefault(name, []).append(time.perf_counter() - started)
            assert getattr(result, field) == expected, (name, field, getattr(result, field))

    changed, rows = args.rows // 100, args.rows
    keel_steps = [
        ("keel first import", file_a, ("--force",), "created", rows),
        ("keel re-import, 1% changed", file_b, ("--force",), "updated", changed),
        ("keel re-import unchanged, hash off (--force)", file_b, ("--force",), "unchanged", rows),
        ("keel re-import unchanged, hash on", file_b, (), "status", "unchanged"),
    ]
    # The same imports under the keep_edits policy (the default): keel also remembers what it
    # wrote and compares every given field three ways, in the database.
    keep_steps = [
        (name.replace("keel", "keep_edits"), path, ("--force",), field, expected)
        for name, path, _, field, expected in keel_steps[:3]
    ]

    def timed_into(name: str, run: Callable[[], Any], factor: float = 1.0) -> Callable[[], None]:
        def contender() -> None:
            truncate(model, alias)
            times.setdefault(name, []).append(timed(run) * factor)

        return contender

    contenders = {
        "keel": lambda: sequence("overwrite", keel_steps),
        "keep_edits": lambda: sequence("keep_edits", keep_steps),
        "loaddata": timed_into(
            "Django loaddata",
            lambda: call_command("loaddata", str(file_a), database=alias, verbosity=0),
        ),
        "loop": timed_into(
            loop_name, lambda: loop_import(model, file_a, alias, args.loop_sample), scale
        ),
        "floor": timed_into(floor_name, lambda: floor_import(model, file_a, alias)),
        "bulk_create": timed_into(
            "Django bulk_create of the parsed file (no checks)",
            lambda: bulk_create_floor(model, file_a, alias),
        ),
    }
    interleave(contenders, args.repeats)
    truncate(model, alias)
    memory = measure_memory(args, alias, file_a)

    median = {name: statistics.median(values) for name, values in times.items()}
    first = median["keel first import"]
    report.heading(
        f"{alias} ({connections[alias].vendor}), {args.rows:,} rows, median of {args.repeats}"
    )
    report.table(
        ["contender", "seconds|{:.3f}", "rows/s|{:,.0f}", "vs keel first import|{:.2f}x"],
        [
            [name, seconds, None if "hash on" in name else args.rows / seconds, seconds / first]
            for name, seconds in median.items()
        ],
    )
    if alias == "postgres":
        report.data.update(
            rows=args.rows,
            seconds={re.sub(r" \([\d,]+ rows, x[\d.]+\)", "", n): v for n, v in median.items()},
        )
    keep_first = median["keep_edits first import"]
    loaddata_ratio = median["Django loaddata"] / first
    keep_loaddata_ratio = median["Django loaddata"] / keep_first
    keep_share = median["keep_edits re-import, 1% changed"] / keep_first
    reimport_share = median["keel re-import, 1% changed"] / first
    loop_ratio = median[loop_name] / first
    floor_ratio = first / median[floor_name]
    wanted = 10 if alias == "postgres" else 6
    goals = [
        (
            f"first import (overwrite) ≥ {wanted}x faster than loaddata",
            loaddata_ratio >= wanted,
            f"{loaddata_ratio:.1f}x",
        ),
        (
            "first import (overwrite) within 3x of COPY",
            floor_ratio <= 3,
            f"{floor_ratio:.1f}x slower",
        ),
        (
            f"first import (keep_edits, the default) ≥ {wanted}x faster than loaddata",
            keep_loaddata_ratio >= wanted,
            f"{keep_loaddata_ratio:.1f}x",
        ),
        (
            "keep_edits re-import with 1% changed ≤ 35% of a keep_edits first import",
            keep_share <= 0.35,
            f"{keep_share:.0%}",
        ),
        (
            "overwrite re-import with 1% changed ≤ 35% of an overwrite first import",
            reimport_share <= 0.35,
            f"{reimport_share:.0%}",
        ),
        (
            "first import ≥ 20x faster than the update_or_create loop",
            loop_ratio >= 20,
            f"{loop_ratio:.1f}x",
        ),
        (
            f"peak memory of a first import of {args.rows:,} rows ≤ 200 MB (whole process)",
            memory["peak"] <= 200,
            f"{memory['peak']:.0f} MB (before import: {memory['before']:.0f} MB)",
        ),
    ]
    if alias != "postgres":
        del goals[1]
    for keep, overwrite in zip(keep_steps[1:], keel_steps[1:3], strict=True):
        ratio = median[keep[0]] / median[overwrite[0]]
        goals.append((f"{keep[0]} ≤ 1.5x the overwrite one", ratio <= 1.5, f"{ratio:.2f}x"))
    # The goals are set for the 100,000-row file; smaller sizes only show the trend.
    for goal, met, measured in goals:
        report.goal(
            goal,
            measured,
            met,
            show="table",
            part=f"{args.rows:,} rows",
            summary=args.rows == 100_000,
        )


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--rows", type=int, default=100_000)
    options.add_argument("--repeats", type=int, default=3)
    options.add_argument("--loop-sample", type=int, default=5_000)
    options.add_argument("--databases", default="postgres,sqlite")
    options.add_argument("--mysql-host", default="127.0.0.1")
    options.add_argument("--sqlite-path", default="")
    options.add_argument("--memory-only", action="store_true", help="only the peak memory")
    options.add_argument("--child-memory", default="")
    options.add_argument("--child-database", default="")
    args = options.parse_args()
    if args.child_memory:
        child_memory(args)
        return

    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="keel-bench-fixtures-"))
    args.sqlite_path = str(workdir / "bench.sqlite3")
    report = Report("fixtures.py")
    try:
        configure(args, databases, fresh=True)
        model = define_model()
        file_a = workdir / "rows.json"
        file_b = workdir / "rows-1pct-changed.json"
        write_fixture(file_a, f"{APP}.benchrow", args.rows)
        write_fixture(file_b, f"{APP}.benchrow", args.rows, changed_every=100)
        report.text(
            f"{versions(platform.machine())} {os.cpu_count()} CPUs; "
            f"fixture {file_a.stat().st_size / 1e6:.1f} MB"
        )
        for alias in databases:
            if not args.memory_only:
                bench_database(args, report, model, alias, file_a, file_b)
                continue
            prepare(model, alias)
            memory = measure_memory(args, alias, file_a)
            report.text(
                f"{alias}: peak RSS {memory['peak']:.0f} MB for a first import of "
                f"{args.rows:,} rows (before the import: {memory['before']:.0f} MB)"
            )
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(workdir, ignore_errors=True)
        if "postgres" in databases:
            drop_postgres(PG_DB, args.pg_host)
        if "mysql" in databases:
            import MySQLdb

            conn = MySQLdb.connect(host=args.mysql_host, user="root")
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{PG_DB}`")
            conn.close()
    report.emit(args.json)


if __name__ == "__main__":
    main()
