"""The systems keel replaces, driven through their own public APIs on the same data as keel.

    python bench/seeds.py [--rows 2000] [--repeats 5] [--reads 1000] [--pairs 300]
                          [--load-rows 5000] [--saves 200]

Every comparison runs on PostgreSQL and Redis on loopback, in one process, contenders
interleaved (the order rotates every repeat), medians of ``--repeats`` rounds:

- fixtures: codex-django 0.7.0 ``JsonFixtureUpsertCommand`` and
  ``SingletonFixtureUpdateCommand`` against keel's commands of the same names, on the same
  JSON files and the same models;
- site settings: codex-django's site-settings Redis manager (``get_site_settings_manager()
  .load_cached(Model)``, what its context processor calls) against keel's ``Model.load()``,
  ten fields read per read;
- tokens: codex-django ``JsonActionTokenRedisManager`` (``create_token``, then
  ``get_token_data`` + ``delete_token``, its consume) against keel's manager of the same name
  (``create_token`` + ``consume_token``);
- model mixins: pytoolbox 14.12.3 ``AutoUpdateFieldsMixin`` and ``UpdatePreconditionsMixin``
  against keel's mixins of the same names and plain Django.

A contender that cannot be imported (pytoolbox 14.12.3 needs Django 6, so Python 3.12 or
later; codex-django needs Python 3.12) is skipped with the reason printed; its table says so.
One table per comparison, each with its goal and whether it is met; JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import itertools
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from cases import SITE_VALUES, make_model, row_fields, site_fields, write_fixture
from harness import (
    Report,
    clean_redis,
    database,
    drop_postgres,
    interleave,
    key_prefix,
    parser,
    setup_django,
    timed,
    versions,
)

DB_NAME = "keel_bench_seeds"
PAYLOAD = {"user_id": 42, "email": "someone@example.com", "next": "/account/"}


def unavailable(module: str) -> str | None:
    """Why the contender in ``module`` cannot run here, or None if it can."""
    import django

    if module.startswith("pytoolbox") and django.VERSION < (6, 0):
        return (
            f"pytoolbox 14.12.3 needs Django 6; this run has Django {django.get_version()} "
            f"(Python {platform.python_version()})"
        )
    try:
        importlib.import_module(module)
    except Exception as exc:
        return f"{module.split('.')[0]} could not be imported ({type(exc).__name__}: {exc})"
    return None


def servers(redis_url: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    import redis
    from django.db import connection

    client = redis.Redis.from_url(redis_url)
    pieces = [f"PostgreSQL {'.'.join(map(str, connection.get_database_version()))}"]
    pieces.append(f"Redis {client.info('server')['redis_version']}")
    client.close()
    for dist in ("codex-django", "pytoolbox"):
        try:
            pieces.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pieces.append(f"{dist} not installed")
    return versions(*pieces)


def run_command(command: Any, *options: str) -> Any:
    from django.core.management import call_command

    call_command(command, *options, verbosity=0, stdout=io.StringIO(), stderr=io.StringIO())
    return command


# --------------------------------------------------------------------------- fixtures


def bench_fixtures(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    from codex_django.system.management.base_commands import (
        JsonFixtureUpsertCommand as CodexUpsert,
    )
    from django.db import connection, models

    from keel.fixtures import JsonFixtureUpsertCommand as KeelUpsert

    row_model = make_model("SeedRow", (models.Model,), row_fields())
    path = workdir / "rows.json"
    write_fixture(path, "keel.seedrow", args.rows)

    class Keel(KeelUpsert):
        fixture_key = "seeds.rows"
        model_class = row_model
        lookup_field = "key"

    class Codex(CodexUpsert):  # type: ignore[misc]
        fixture_key = "seeds.rows"
        model_class = row_model
        lookup_field = "key"
        fixture_path = path

    def keel_command() -> Any:
        command = Keel()
        command.fixture_path = path  # type: ignore[misc]
        return command

    steps = (
        ("first import", ("--force",)),
        ("re-import unchanged, hash off (--force)", ("--force",)),
        ("re-import unchanged, hash on", ()),
    )
    times: dict[str, list[float]] = {}

    def sequence(label: str, factory: Callable[[], Any]) -> Callable[[], None]:
        def go() -> None:
            with connection.cursor() as cursor:
                cursor.execute(f'TRUNCATE "{row_model._meta.db_table}"')
            for step, options in steps:
                seconds = timed(lambda o=options: run_command(factory(), *o))
                times.setdefault(f"{label} {step}", []).append(seconds)
            assert row_model.objects.count() == args.rows

        return go

    contenders = {"keel": sequence("keel", keel_command), "codex": sequence("codex", Codex)}
    interleave(contenders, 1)  # warm-up: code paths, plans, the hash rows
    times.clear()
    interleave(contenders, args.fixture_repeats)
    median = {name: statistics.median(values) for name, values in times.items()}
    rows = []
    for step, _ in steps:
        for label in ("keel", "codex"):
            seconds = median[f"{label} {step}"]
            ratio = median[f"codex {step}"] / median[f"keel {step}"] if label == "codex" else None
            rows.append(
                [
                    f"{label}: {step}",
                    seconds,
                    None if "hash on" in step else args.rows / seconds,
                    ratio,
                ]
            )
    report.table(
        ["contender", "seconds|{:.3f}", "rows/s|{:,.0f}", "codex / keel|{:.1f}x"],
        rows,
        caption=f"Median of {args.fixture_repeats} interleaved rounds; one JSON file of "
        f"{args.rows:,} rows.",
    )
    first = median["codex first import"] / median["keel first import"]
    report.goal(
        "first import ≥ 20x faster than the update_or_create loop "
        "(here codex-django's command, which is that loop)",
        f"{first:.1f}x",
        first >= 20,
    )
    report.data["fixture"] = [args.rows, median["codex first import"]]


def bench_singleton(args: argparse.Namespace, report: Report, workdir: Path) -> None:
    from codex_django.system.management.base_commands import (
        SingletonFixtureUpdateCommand as CodexSingleton,
    )
    from codex_django.system.mixins.settings import AbstractSiteSettings as CodexSettingsBase
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from keel.fixtures import SingletonFixtureUpdateCommand as KeelSingleton
    from keel.site.models import AbstractSiteSettings as KeelSettingsBase

    keel_model = make_model("SeedKeelSingleton", (KeelSettingsBase,), site_fields())
    codex_model = make_model("SeedCodexSingleton", (CodexSettingsBase,), site_fields())
    keel_model.objects.create(pk=1, **SITE_VALUES)
    codex_model.objects.create(pk=1, **SITE_VALUES)
    files = []
    for index, name in enumerate(("Acme Tools", "Acme Tools & Co")):
        path = workdir / f"singleton-{index}.json"
        fields = {k: str(v) if isinstance(v, Decimal) else v for k, v in SITE_VALUES.items()}
        fields |= {"site_name": name, "phone": f"+1 555 01{index:02d}"}
        path.write_text(json.dumps([{"fields": fields}]), encoding="utf-8")
        files.append(path)

    def keel_run(path: Path) -> Any:
        class Command(KeelSingleton):
            fixture_key = "seeds.singleton"
            model_class = keel_model

        command = Command()
        command.fixture_path = path  # type: ignore[misc]
        return run_command(command, "--force")

    def codex_run(path: Path) -> Any:
        class Command(CodexSingleton):  # type: ignore[misc]
            fixture_key = "seeds.singleton"
            model_class = codex_model
            fixture_path = path

        return run_command(Command(), "--force")

    runs = {"keel": keel_run, "codex-django": codex_run}
    queries: dict[str, int] = {}
    for name, run in runs.items():
        run(files[0])
        with CaptureQueriesContext(connection) as captured:
            command = run(files[1])
        queries[name] = len(captured)
        assert sorted(command.updated_fields) == ["phone", "site_name"], command.updated_fields
    # Each round runs both files, so that every run changes two fields.
    both = {name: lambda run=run: [run(path) for path in files] for name, run in runs.items()}
    timings = interleave(both, args.repeats, per=len(files))
    keel = timings.median("keel")
    report.table(
        ["contender", "ms per run|{:.2f}", "vs keel|{:.2f}x", "SQL queries per run|{}"],
        [
            [name, timings.median(name) * 1e3, timings.median(name) / keel, queries[name]]
            for name in runs
        ],
        caption="One run = the command with --force on a one-row file changing two of ten "
        f"fields; median of {args.repeats} rounds of {len(files)} runs per contender.",
    )
    report.text(
        "No speed goal is set for this command: comparison only (keel saves only the changed "
        "fields; codex-django saves all, then writes the Redis hash)."
    )


# --------------------------------------------------------------------------- site settings


def bench_site_settings(args: argparse.Namespace, report: Report) -> None:
    from codex_django.core.redis.managers.settings import get_site_settings_manager
    from codex_django.system.mixins.settings import AbstractSiteSettings as CodexSettingsBase
    from django.conf import settings
    from django.test.utils import override_settings

    from keel.site.cache import clear_local_copies
    from keel.site.models import AbstractSiteSettings as KeelSettingsBase

    keel_model = make_model("SeedKeelSettings", (KeelSettingsBase,), site_fields())
    codex_model = make_model("SeedCodexSettings", (CodexSettingsBase,), site_fields())
    keel_model.objects.create(pk=1, **SITE_VALUES)
    codex_model.objects.create(pk=1, **SITE_VALUES)  # its AFTER_SAVE hook fills Redis
    names = list(SITE_VALUES)
    expected = tuple(SITE_VALUES.values())

    def keel_read() -> tuple[Any, ...]:
        obj = keel_model.load()
        return tuple(getattr(obj, name) for name in names)

    def codex_read() -> tuple[Any, ...]:
        data = get_site_settings_manager().load_cached(codex_model)
        return tuple(data[name] for name in names)

    window = override_settings(KEEL={**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 3600})
    every_read = override_settings(KEEL={**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0})
    slow = max(args.reads // 5, 50)

    def keel_under(override: Any, reads: int) -> Callable[[], float]:
        def run() -> float:
            with override:
                keel_read()
                return timed(keel_read, reads)

        return run

    with every_read:
        assert keel_read() == expected
    assert codex_read() == expected, codex_read()
    contenders: dict[str, Callable[[], float]] = {
        "keel, local window": keel_under(window, args.reads),
        "keel, Redis (local window off)": keel_under(every_read, slow),
        "codex-django load_cached (HGETALL)": lambda: timed(codex_read, slow),
    }
    timings = interleave(contenders, args.repeats, before=clear_local_copies, self_timed=True)
    median = {name: timings.median(name) * 1e6 for name in contenders}
    codex_us = median["codex-django load_cached (HGETALL)"]
    trips = ["0", "1 Redis", "1 Redis (a new connection each read)"]
    report.table(
        [
            "contender",
            "µs per read|{:.2f}",
            "speed vs codex-django|{:.1f}x",
            "round trips per read",
        ],
        [
            [name, us, codex_us / us, trip]
            for (name, us), trip in zip(median.items(), trips, strict=True)
        ],
        caption=f"One read = get the settings and read the same ten fields; median of "
        f"{args.repeats} interleaved rounds of {args.reads:,} reads ({slow:,} for the "
        "contenders that go to Redis).",
    )
    report.text(
        "No goal against codex-django is set (keel's goals are against django-solo, in the "
        "table above): comparison only."
    )
    report.data["site_settings"] = {n: v for n, v in median.items() if "codex" in n}


# --------------------------------------------------------------------------- tokens


def bench_tokens(args: argparse.Namespace, report: Report) -> None:
    from codex_django.system.redis.managers.tokens import (
        JsonActionTokenRedisManager as CodexTokens,
    )

    from keel.tokens import JsonActionTokenRedisManager as KeelTokens

    keel = KeelTokens(prefix="seeds:confirm")
    codex = CodexTokens(prefix="seeds:confirm")

    def keel_round() -> None:
        for _ in range(args.pairs):
            assert keel.consume_token(keel.create_token(PAYLOAD)) == PAYLOAD

    def codex_round() -> None:
        for _ in range(args.pairs):
            token = codex.create_token(PAYLOAD, ttl_seconds=3600)
            assert codex.get_token_data(token) == PAYLOAD
            codex.delete_token(token)

    contenders = {
        "keel create + consume": keel_round,
        "codex-django create + get + delete": codex_round,
    }
    timings = interleave(contenders, args.repeats, per=args.pairs, warmup=True)
    keel_rate = 1 / timings.median("keel create + consume")
    trips = {"keel create + consume": "1 + 1", "codex-django create + get + delete": "1 + 2"}
    rows = [
        [
            name,
            1 / timings.median(name),
            timings.median(name) * 1e6,
            1 / timings.median(name) / keel_rate,
            trips[name],
        ]
        for name in contenders
    ]
    report.table(
        [
            "contender",
            "pairs/s|{:,.0f}",
            "µs per pair|{:.1f}",
            "vs keel|{:.0%}",
            "round trips (create + consume)",
        ],
        rows,
        caption=f"{args.pairs:,} pairs per round, median of {args.repeats} interleaved rounds.",
    )
    report.text(
        "codex-django opens a new Redis connection per operation and consumes in two commands "
        "(not atomic: two requests can both read the payload). No goal against it is set: "
        "comparison only."
    )
    report.data["tokens"] = {row[0]: row[1] for row in rows}


# --------------------------------------------------------------------------- mixins


def bench_mixins(args: argparse.Namespace, report: Report) -> None:
    from django.db import models
    from pytoolbox.django.models.mixins import AutoUpdateFieldsMixin as PtbAuto
    from pytoolbox.django.models.mixins import UpdatePreconditionsMixin as PtbGuard

    from keel.models.mixins import AutoUpdateFieldsMixin as KeelAuto
    from keel.models.mixins import UpdatePreconditionsMixin as KeelGuard

    def wide_fields() -> dict[str, Any]:
        fields: dict[str, Any] = {f"c{i}": models.CharField(max_length=50) for i in range(10)}
        fields |= {f"n{i}": models.IntegerField() for i in range(6)}
        fields |= {f"b{i}": models.BooleanField() for i in range(4)}
        return fields

    tracked = {
        "plain Django": make_model("SeedPlain", (models.Model,), wide_fields()),
        "keel AutoUpdateFieldsMixin": make_model(
            "SeedKeelAuto", (KeelAuto, models.Model), wide_fields()
        ),
        "pytoolbox AutoUpdateFieldsMixin": make_model(
            "SeedPtbAuto", (PtbAuto, models.Model), wide_fields()
        ),
    }

    def guard_fields() -> dict[str, Any]:
        return {"name": models.CharField(max_length=50), "version": models.IntegerField()}

    guarded = {
        "keel UpdatePreconditionsMixin": make_model(
            "SeedKeelGuard", (KeelGuard, models.Model), guard_fields()
        ),
        "pytoolbox UpdatePreconditionsMixin": make_model(
            "SeedPtbGuard", (PtbGuard, models.Model), guard_fields()
        ),
    }
    row = {f"c{i}": f"value {i}" for i in range(10)} | {f"n{i}": i for i in range(6)}
    row |= {f"b{i}": bool(i % 2) for i in range(4)}
    for model in tracked.values():
        model.objects.bulk_create(model(**row) for _ in range(args.load_rows))
    for model in guarded.values():
        model.objects.create(pk=1, name="start", version=0)
    plain_guard = guarded["keel UpdatePreconditionsMixin"]

    def load(model: type[Any]) -> Callable[[], Any]:
        return lambda: list(model.objects.all())

    values = itertools.count(1000)

    def save_one(model: type[Any]) -> Callable[[], Any]:
        objs = list(model.objects.all()[: args.saves])

        def run() -> None:
            for obj in objs:
                obj.n0 = next(values)  # a new value every time: no save is a no-op
                obj.save()

        return run

    def guarded_save(name: str, model: type[Any]) -> Callable[[], Any]:
        def run() -> None:
            obj = model.objects.get(pk=1)
            for _ in range(args.saves):
                current = obj.version
                obj.version = current + 1
                obj.name = f"v{current + 1}"
                obj.save(pre_filters={"version": current})

        return run

    def plain_update() -> None:
        current = plain_guard.objects.get(pk=1).version
        for _ in range(args.saves):
            updated = plain_guard.objects.filter(pk=1, version=current).update(
                name=f"v{current + 1}", version=current + 1
            )
            assert updated == 1
            current += 1

    # Both guards refuse a stale save (the promise being timed).
    for model in guarded.values():
        stale = model.objects.get(pk=1)
        model.objects.filter(pk=1).update(version=models.F("version") + 1)
        stale.version += 1
        try:
            stale.save(pre_filters={"version": stale.version - 1})
        except Exception:
            pass
        else:
            raise AssertionError(f"{model.__name__} saved over a concurrent change")

    load_runs = {name: load(model) for name, model in tracked.items()}
    save_runs = {name: save_one(model) for name, model in tracked.items()}
    guard_runs: dict[str, Callable[[], Any]] = {
        "plain filter(version=v).update()": plain_update,
        **{name: guarded_save(name, model) for name, model in guarded.items()},
    }
    timings = [
        interleave(group, args.repeats, warmup=True) for group in (load_runs, save_runs, guard_runs)
    ]
    load_t, save_t, guard_t = timings
    plain_load, plain_save = load_t.median("plain Django"), save_t.median("plain Django")
    rows = [
        [
            name,
            load_t.median(name) * 1e3,
            load_t.median(name) / plain_load,
            save_t.median(name) / args.saves * 1e6,
            save_t.median(name) / plain_save,
        ]
        for name in tracked
    ]
    report.table(
        [
            "contender",
            "load (ms)|{:.1f}",
            "x plain|{:.2f}",
            "save one field (µs)|{:.0f}",
            "x plain|{:.2f}",
        ],
        rows,
        caption=f"Load = list() of {args.load_rows:,} rows of 20 fields; save = change one field "
        f"and save(), {args.saves} instances; median of {args.repeats} interleaved rounds.",
    )
    keel_load = rows[1][2]
    report.goal("keel load ≤ 1.20x plain", f"{keel_load:.2f}x", keel_load <= 1.2)
    report.data["mixins"] = {f"{row[0]} (PostgreSQL)": row[2] for row in rows}
    floor = guard_t.median("plain filter(version=v).update()")
    report.table(
        ["contender", "µs per guarded save|{:.0f}", "x floor|{:.2f}"],
        [[n, guard_t.median(n) / args.saves * 1e6, guard_t.median(n) / floor] for n in guard_runs],
        caption=f"Guarded save = save(pre_filters={{'version': v}}) bumping the version, "
        f"{args.saves} saves in a row on one row; the floor is the conditional UPDATE written "
        "by hand.",
    )
    report.text(
        "No speed goal for the guarded save is set: comparison only (keel runs each guarded "
        "save in a savepoint, so that a refused save leaves the caller's transaction usable)."
    )


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--rows", type=int, default=2000, help="rows of the fixture file")
    options.add_argument("--fixture-repeats", type=int, default=3)
    options.add_argument("--repeats", type=int, default=5)
    options.add_argument("--reads", type=int, default=1000)
    options.add_argument("--pairs", type=int, default=300)
    options.add_argument("--load-rows", type=int, default=5000)
    options.add_argument("--saves", type=int, default=200)
    options.add_argument(
        "--only",
        default="",
        help="comma-separated subset: fixtures,singleton,settings,tokens,mixins",
    )
    args = options.parse_args()
    prefix = key_prefix()
    setup_django(
        {"default": database("postgres", DB_NAME, args.pg_host, fresh=True)},
        DEBUG=False,
        USE_I18N=True,
        LANGUAGE_CODE="en",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        KEEL={"REDIS_URL": args.redis_url, "KEY_PREFIX": prefix},
        # codex-django reads these three (its keys become "{PROJECT_NAME}:...").
        REDIS_URL=args.redis_url,
        PROJECT_NAME=f"{prefix}-codex",
        CODEX_REDIS_ENABLED=True,
        # codex-django's settings mixins import its encrypted fields, which demand a key.
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", "keel", verbosity=0)
    try:
        from loguru import logger  # codex-django logs every import step through loguru

        logger.remove()
    except ImportError:
        pass
    report = Report("seeds.py")
    report.text(f"keel bench/seeds.py — {servers(args.redis_url)}; {platform.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        codex = "codex_django.system."
        # Each comparison: its title, the contender it sets against keel and that one's module.
        parts: dict[str, tuple[Callable[[], None], str, str, str]] = {
            "fixtures": (
                lambda: bench_fixtures(args, report, workdir),
                f"Fixture upsert: codex-django against keel, {args.rows:,} rows (PostgreSQL)",
                "codex-django JsonFixtureUpsertCommand",
                codex + "management.base_commands",
            ),
            "singleton": (
                lambda: bench_singleton(args, report, workdir),
                "Singleton fixture: codex-django against keel (PostgreSQL, Redis)",
                "codex-django SingletonFixtureUpdateCommand",
                codex + "mixins.settings",
            ),
            "settings": (
                lambda: bench_site_settings(args, report),
                "Site settings read: codex-django's Redis manager against keel",
                "codex-django site-settings manager",
                "codex_django.core.redis.managers.settings",
            ),
            "tokens": (
                lambda: bench_tokens(args, report),
                "Action tokens: codex-django against keel (Redis)",
                "codex-django JsonActionTokenRedisManager",
                codex + "redis.managers.tokens",
            ),
            "mixins": (
                lambda: bench_mixins(args, report),
                "Model mixins: pytoolbox against keel (PostgreSQL)",
                "pytoolbox 14.12.3 mixins",
                "pytoolbox.django.models.mixins",
            ),
        }
        try:
            for name in [p for p in args.only.split(",") if p] or list(parts):
                run, title, contender, module = parts[name]
                report.heading(title)
                why = unavailable(module)
                if why:
                    report.text(f"Skipped: {why}.")
                    report.skip(f"{contender}: {why}")
                    print(f"SKIPPED {contender}: {why}", file=sys.stderr, flush=True)
                    continue
                started = time.perf_counter()
                run()
                print(
                    f"  seeds: {name} done in {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                )
        finally:
            clean_redis(args.redis_url, prefix)
            connections.close_all()
            drop_postgres(DB_NAME, args.pg_host)
    report.emit(args.json)


if __name__ == "__main__":
    main()
