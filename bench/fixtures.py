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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import django
from django.apps import AppConfig
from django.conf import settings

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


MYSQL_HOST = "127.0.0.1"


def configure(databases: list[str], pg_host: str, sqlite_path: str) -> None:
    config: dict[str, dict[str, Any]] = {}
    for alias in databases:
        if alias == "postgres":
            config[alias] = {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": PG_DB,
                "USER": "postgres",
                "HOST": pg_host,
            }
        elif alias == "sqlite":
            config[alias] = {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path}
        elif alias == "mysql":
            config[alias] = {
                "ENGINE": "django.db.backends.mysql",
                "NAME": PG_DB,
                "USER": "root",
                "HOST": MYSQL_HOST,
                "OPTIONS": {"charset": "utf8mb4"},
            }
        else:
            raise SystemExit(f"unknown database {alias!r}")
    config["default"] = dict(config[databases[0]])
    settings.configure(
        DATABASES=config,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "keel",
            f"{APP}.BenchConfig",
        ],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        KEEL={},
    )
    django.setup()


def define_model() -> type[Any]:
    from django.db import models

    class BenchRow(models.Model):
        key = models.CharField(max_length=64, unique=True)
        title = models.CharField(max_length=200)
        body = models.TextField()
        price = models.DecimalField(max_digits=10, decimal_places=2)
        active = models.BooleanField()
        day = models.DateField()
        rank = models.IntegerField()

        class Meta:
            app_label = APP

    return BenchRow


def make_rows(count: int, changed_every: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        title = f"Title {i}"
        if changed_every and i % changed_every == 0:
            title += " (changed)"
        rows.append(
            {
                "model": f"{APP}.benchrow",
                "fields": {
                    "key": f"row-{i:07d}",
                    "title": title,
                    "body": f"Body of row {i}. " * 5,
                    "price": f"{i % 10000}.{i % 100:02d}",
                    "active": i % 3 != 0,
                    "day": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
                    "rank": i % 1000,
                },
            }
        )
    return rows


def write_fixture(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as stream:
        stream.write("[\n")
        for i, row in enumerate(rows):
            stream.write(("," if i else "") + json.dumps(row) + "\n")
        stream.write("]\n")


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


def timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


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
    configure([args.child_database], args.pg_host, args.sqlite_path)
    model = define_model()
    truncate(model, args.child_database)
    before = peak_rss_mb()
    result = run_keel(model, Path(args.child_memory), args.child_database, "--force")
    after = peak_rss_mb()
    print(json.dumps({"before": before, "peak": after, "created": result.created}))


def measure_memory(args: argparse.Namespace, alias: str, path: Path) -> dict[str, float]:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child-memory",
            str(path),
            "--child-database",
            alias,
            "--pg-host",
            args.pg_host,
            "--mysql-host",
            args.mysql_host,
            "--sqlite-path",
            args.sqlite_path,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_database(
    args: argparse.Namespace, model: type[Any], alias: str, file_a: Path, file_b: Path
) -> list[str]:
    from django.db import connections

    with connections[alias].schema_editor() as editor:
        editor.create_model(model)
    from django.core.management import call_command

    call_command("migrate", "keel", database=alias, verbosity=0)
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

    def keel_sequence() -> None:
        truncate(model, alias)
        results = {}

        def step(name: str, path: Path, *options: str) -> None:
            started = time.perf_counter()
            results[name] = run_keel(model, path, alias, *options)
            times.setdefault(name, []).append(time.perf_counter() - started)

        step("keel first import", file_a, "--force")
        step("keel re-import, 1% changed", file_b, "--force")
        step("keel re-import unchanged, hash off (--force)", file_b, "--force")
        step("keel re-import unchanged, hash on", file_b)
        assert results["keel first import"].created == args.rows
        assert results["keel re-import, 1% changed"].updated == args.rows // 100
        assert results["keel re-import unchanged, hash off (--force)"].unchanged == args.rows
        assert results["keel re-import unchanged, hash on"].status == "unchanged"

    def keep_edits_sequence() -> None:
        # The same imports under the keep_edits policy (the default): keel also remembers
        # what it wrote and compares every given field three ways, in the database.
        truncate(model, alias)
        results = {}
        steps = [
            ("keep_edits first import", file_a),
            ("keep_edits re-import, 1% changed", file_b),
            ("keep_edits re-import unchanged, hash off (--force)", file_b),
        ]
        for name, path in steps:
            started = time.perf_counter()
            results[name] = run_keel(model, path, alias, "--force", policy="keep_edits")
            times.setdefault(name, []).append(time.perf_counter() - started)
        assert results["keep_edits first import"].created == args.rows
        assert results["keep_edits re-import, 1% changed"].updated == args.rows // 100
        assert results["keep_edits re-import unchanged, hash off (--force)"].unchanged == args.rows

    def loaddata() -> None:
        from django.core.management import call_command

        truncate(model, alias)
        times.setdefault("Django loaddata", []).append(
            timed(lambda: call_command("loaddata", str(file_a), database=alias, verbosity=0))
        )
        assert model.objects.using(alias).count() == args.rows

    def loop() -> None:
        truncate(model, alias)
        times.setdefault(loop_name, []).append(
            timed(lambda: loop_import(model, file_a, alias, args.loop_sample)) * scale
        )

    def floor() -> None:
        truncate(model, alias)
        times.setdefault(floor_name, []).append(timed(lambda: floor_import(model, file_a, alias)))
        assert model.objects.using(alias).count() == args.rows

    def django_floor() -> None:
        truncate(model, alias)
        times.setdefault("Django bulk_create of the parsed file (no checks)", []).append(
            timed(lambda: bulk_create_floor(model, file_a, alias))
        )

    rounds = [keel_sequence, keep_edits_sequence, loaddata, loop, floor, django_floor]
    for repeat in range(args.repeats):
        shift = repeat % len(rounds)
        for contender in rounds[shift:] + rounds[:shift]:
            contender()
        print(f"  {alias}: round {repeat + 1}/{args.repeats} done", file=sys.stderr)
    truncate(model, alias)
    memory = measure_memory(args, alias, file_a)

    median = {name: statistics.median(values) for name, values in times.items()}
    first = median["keel first import"]
    lines = [
        f"#### {alias} ({connections[alias].vendor}), {args.rows:,} rows, median of {args.repeats}",
        "",
        "| contender | seconds | rows/s | vs keel first import |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in median.items():
        rate = args.rows / seconds if "hash on" not in name else float("nan")
        rate_text = f"{rate:,.0f}" if rate == rate else "—"
        lines.append(f"| {name} | {seconds:.3f} | {rate_text} | {seconds / first:.2f}x |")
    loaddata_ratio = median["Django loaddata"] / first
    loop_ratio = median[loop_name] / first
    floor_ratio = first / median[floor_name]
    reimport_share = median["keel re-import, 1% changed"] / first
    keep_first = median["keep_edits first import"]
    keep_share = median["keep_edits re-import, 1% changed"] / keep_first
    keep_loaddata_ratio = median["Django loaddata"] / keep_first
    wanted = 10 if alias == "postgres" else 6
    goals = [
        (
            f"first import (overwrite) ≥ {wanted}x faster than loaddata",
            loaddata_ratio >= wanted,
            f"{loaddata_ratio:.1f}x",
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
    if alias == "postgres":
        goals.insert(
            1,
            (
                "first import (overwrite) within 3x of COPY",
                floor_ratio <= 3,
                f"{floor_ratio:.1f}x slower",
            ),
        )
    for policy_step, overwrite_step in (
        ("keep_edits re-import, 1% changed", "keel re-import, 1% changed"),
        (
            "keep_edits re-import unchanged, hash off (--force)",
            "keel re-import unchanged, hash off (--force)",
        ),
    ):
        ratio = median[policy_step] / median[overwrite_step]
        goals.append((f"{policy_step} ≤ 1.5x the overwrite one", ratio <= 1.5, f"{ratio:.2f}x"))
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {goal} | {value} | {'met' if ok else 'NOT met'} |" for goal, ok, value in goals]
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-sample", type=int, default=5_000)
    parser.add_argument("--databases", default="postgres,sqlite")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--mysql-host", default="127.0.0.1")
    parser.add_argument("--sqlite-path", default="")
    parser.add_argument(
        "--memory-only", action="store_true", help="Only measure the peak memory of an import."
    )
    parser.add_argument("--child-memory", default="")
    parser.add_argument("--child-database", default="")
    args = parser.parse_args()
    global MYSQL_HOST
    MYSQL_HOST = args.mysql_host
    if args.child_memory:
        child_memory(args)
        return

    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="keel-bench-fixtures-"))
    args.sqlite_path = str(workdir / "bench.sqlite3")
    if "postgres" in databases:
        import psycopg

        with psycopg.connect(
            host=args.pg_host, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}"')
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
    if "mysql" in databases:
        mysql_database(args.mysql_host, create=True)
    try:
        configure(databases, args.pg_host, args.sqlite_path)
        model = define_model()
        file_a = workdir / "rows.json"
        file_b = workdir / "rows-1pct-changed.json"
        write_fixture(file_a, make_rows(args.rows))
        write_fixture(file_b, make_rows(args.rows, changed_every=100))
        print(
            f"Python {platform.python_version()}, Django {django.get_version()}, "
            f"{platform.machine()} {os.cpu_count()} CPUs; "
            f"fixture {file_a.stat().st_size / 1e6:.1f} MB",
        )
        print()
        for alias in databases:
            if args.memory_only:
                from django.core.management import call_command
                from django.db import connections as conns

                with conns[alias].schema_editor() as editor:
                    editor.create_model(model)
                call_command("migrate", "keel", database=alias, verbosity=0)
                memory = measure_memory(args, alias, file_a)
                print(
                    f"{alias}: peak RSS {memory['peak']:.0f} MB for a first import of "
                    f"{args.rows:,} rows (before the import: {memory['before']:.0f} MB)"
                )
                continue
            for line in bench_database(args, model, alias, file_a, file_b):
                print(line)
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(workdir, ignore_errors=True)
        if "postgres" in databases:
            import psycopg

            with psycopg.connect(
                host=args.pg_host, user="postgres", dbname="postgres", autocommit=True
            ) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}"')
        if "mysql" in databases:
            mysql_database(args.mysql_host, create=False)


def mysql_database(host: str, *, create: bool) -> None:
    import MySQLdb

    conn = MySQLdb.connect(host=host, user="root", charset="utf8mb4")
    try:
        cursor = conn.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{PG_DB}`")
        if create:
            cursor.execute(f"CREATE DATABASE `{PG_DB}` CHARACTER SET utf8mb4")
    finally:
        conn.close()


if __name__ == "__main__":
    main()
