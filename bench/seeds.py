"""The systems keel replaces (codex-django, pytoolbox), driven through their own public APIs
on the same data as keel; a contender that cannot be imported here is skipped with the reason."""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

import harness
from cases import (
    SITE_VALUES,
    make_model,
    read_fields,
    row_fields,
    site_fields,
    token_pairs,
    write_fixture,
)
from harness import Report

DB_NAME = "keel_bench_seeds"
WORKDIR = Path(tempfile.mkdtemp(prefix="keel-bench-seeds-"))
PAYLOAD = {"user_id": 42, "email": "someone@example.com", "next": "/account/"}
ARGS = harness.options(
    __doc__, rows=2000, fixture_repeats=3, repeats=5, reads=1000, pairs=300, load_rows=5000,
    saves=200,
)  # fmt: skip


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


def servers() -> str:
    from importlib.metadata import PackageNotFoundError, version

    pieces = [harness.db_version(), harness.redis_version(ARGS.redis_url)]
    for dist in ("codex-django", "pytoolbox"):
        try:
            pieces.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pieces.append(f"{dist} not installed")
    return harness.versions(*pieces)


def run_command(command: Any, *options: str) -> Any:
    from django.core.management import call_command

    call_command(command, *options, verbosity=0, stdout=io.StringIO(), stderr=io.StringIO())
    return command


def bench_fixtures(report: Report) -> None:
    from codex_django.system.management.base_commands import JsonFixtureUpsertCommand as Codex
    from django.db import connection, models

    from keel.fixtures import JsonFixtureUpsertCommand as Keel

    row_model = make_model("SeedRow", (models.Model,), row_fields())
    path = WORKDIR / "rows.json"
    write_fixture(path, "keel.seedrow", ARGS.rows)
    attrs = {"fixture_key": "seeds.rows", "model_class": row_model, "lookup_field": "key"}
    steps = (
        ("first import", ("--force",)),
        ("re-import unchanged, hash off (--force)", ("--force",)),
        ("re-import unchanged, hash on", ()),
    )
    times: dict[str, list[float]] = {}

    def sequence(label: str, base: type[Any]) -> Callable[[], None]:
        command = type("Command", (base,), {**attrs, "fixture_path": path})

        def go() -> None:
            with connection.cursor() as cursor:
                cursor.execute(f'TRUNCATE "{row_model._meta.db_table}"')
            for step, flags in steps:
                harness.recorded(
                    times, f"{label} {step}", lambda f=flags: run_command(command(), *f)
                )
            assert row_model.objects.count() == ARGS.rows

        return go

    contenders = {"keel": sequence("keel", Keel), "codex": sequence("codex", Codex)}
    harness.interleave(contenders, 1)  # warm-up: code paths, plans, the hash rows
    times.clear()
    harness.interleave(contenders, ARGS.fixture_repeats)
    median = harness.medians(times)
    rows = [
        [
            f"{label}: {step}",
            median[f"{label} {step}"],
            None if "hash on" in step else ARGS.rows / median[f"{label} {step}"],
            median[f"codex {step}"] / median[f"keel {step}"] if label == "codex" else None,
        ]
        for step, _ in steps
        for label in ("keel", "codex")
    ]
    report.table(
        "contender; seconds|{:.3f}; rows/s|{:,.0f}; codex / keel|{:.1f}x",
        rows,
        caption=f"Median of {ARGS.fixture_repeats} interleaved rounds; one JSON file of "
        f"{ARGS.rows:,} rows.",
    )
    first = median["codex first import"] / median["keel first import"]
    report.goal(
        "first import ≥ 20x faster than the update_or_create loop "
        "(here codex-django's command, which is that loop)",
        f"{first:.1f}x",
        first >= 20,
    )
    report.data["fixture"] = [ARGS.rows, median["codex first import"]]


def settings_models(prefix: str) -> tuple[type[Any], type[Any]]:
    """keel's and codex-django's site settings models, ``SITE_VALUES`` saved in each (the
    latter's ``AFTER_SAVE`` hook fills Redis)."""
    from codex_django.system.mixins.settings import AbstractSiteSettings as Codex

    from keel.site.models import AbstractSiteSettings as Keel

    made = [
        make_model(f"Seed{name}{prefix}", (base,), site_fields())
        for name, base in (("Keel", Keel), ("Codex", Codex))
    ]
    for model in made:
        model.objects.create(pk=1, **SITE_VALUES)
    return made[0], made[1]


def bench_singleton(report: Report) -> None:
    from codex_django.system.management.base_commands import SingletonFixtureUpdateCommand as C
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from keel.fixtures import SingletonFixtureUpdateCommand

    keel_model, codex_model = settings_models("Singleton")
    files = []
    for index, name in enumerate(("Acme Tools", "Acme Tools & Co")):
        path = WORKDIR / f"singleton-{index}.json"
        fields = {k: str(v) if isinstance(v, Decimal) else v for k, v in SITE_VALUES.items()}
        fields |= {"site_name": name, "phone": f"+1 555 01{index:02d}"}
        path.write_text(json.dumps([{"fields": fields}]), encoding="utf-8")
        files.append(path)

    def runner(base: type[Any], model: type[Any]) -> Callable[[Path], Any]:
        def run(path: Path) -> Any:
            attrs = {"fixture_key": "seeds.singleton", "model_class": model, "fixture_path": path}
            return run_command(type("Command", (base,), attrs)(), "--force")

        return run

    runs = {
        "keel": runner(SingletonFixtureUpdateCommand, keel_model),
        "codex-django": runner(C, codex_model),
    }
    queries: dict[str, int] = {}
    for name, run in runs.items():
        run(files[0])
        with CaptureQueriesContext(connection) as captured:
            command = run(files[1])
        queries[name] = len(captured)
        assert sorted(command.updated_fields) == ["phone", "site_name"], command.updated_fields
    # Each round runs both files, so that every run changes two fields.
    both = {name: lambda run=run: [run(path) for path in files] for name, run in runs.items()}
    timings = harness.interleave(both, ARGS.repeats, per=len(files))
    keel = timings.median("keel")
    report.table(
        "contender; ms per run|{:.2f}; vs keel|{:.2f}x; SQL queries per run|{}",
        [[n, timings.median(n) * 1e3, timings.median(n) / keel, queries[n]] for n in runs],
        caption="One run = the command with --force on a one-row file changing two of ten "
        f"fields; median of {ARGS.repeats} rounds of {len(files)} runs per contender.",
    )
    report.text(
        "No speed goal is set for this command: comparison only (keel saves only the changed "
        "fields; codex-django saves all, then writes the Redis hash)."
    )


def bench_site_settings(report: Report) -> None:
    from codex_django.core.redis.managers.settings import get_site_settings_manager
    from django.conf import settings
    from django.test.utils import override_settings

    from keel.site.cache import clear_local_copies

    keel_model, codex_model = settings_models("Settings")
    expected = tuple(SITE_VALUES.values())

    def keel_read() -> tuple[Any, ...]:
        return read_fields(keel_model.load())

    def codex_read() -> tuple[Any, ...]:
        data = get_site_settings_manager().load_cached(codex_model)
        return tuple(data[name] for name in SITE_VALUES)

    window = override_settings(KEEL={**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 3600})
    every_read = override_settings(KEEL={**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0})
    slow = max(ARGS.reads // 5, 50)

    def keel_under(override: Any, reads: int) -> Callable[[], float]:
        def run() -> float:
            with override:
                keel_read()
                return harness.timed(keel_read, reads)

        return run

    with every_read:
        assert keel_read() == expected
    assert codex_read() == expected, codex_read()
    contenders: dict[str, Callable[[], float]] = {
        "keel, local window": keel_under(window, ARGS.reads),
        "keel, Redis (local window off)": keel_under(every_read, slow),
        "codex-django load_cached (HGETALL)": lambda: harness.timed(codex_read, slow),
    }
    timings = harness.interleave(
        contenders, ARGS.repeats, before=clear_local_copies, self_timed=True
    )
    median = {name: timings.median(name) * 1e6 for name in contenders}
    codex_us = median["codex-django load_cached (HGETALL)"]
    trips = ["0", "1 Redis", "1 Redis (a new connection each read)"]
    report.table(
        "contender; µs per read|{:.2f}; speed vs codex-django|{:.1f}x; round trips per read",
        [
            [name, us, codex_us / us, trip]
            for (name, us), trip in zip(median.items(), trips, strict=True)
        ],
        caption=f"One read = get the settings and read the same ten fields; median of "
        f"{ARGS.repeats} interleaved rounds of {ARGS.reads:,} reads ({slow:,} for the "
        "contenders that go to Redis).",
    )
    report.text(
        "No goal against codex-django is set (keel's goals are against django-solo, in the "
        "table above): comparison only."
    )
    report.data["site_settings"] = {n: v for n, v in median.items() if "codex" in n}


def bench_tokens(report: Report) -> None:
    from codex_django.system.redis.managers.tokens import JsonActionTokenRedisManager as Codex

    from keel.tokens import JsonActionTokenRedisManager as Keel

    keel, codex = Keel(prefix="seeds:confirm"), Codex(prefix="seeds:confirm")

    def codex_round() -> None:
        for _ in range(ARGS.pairs):
            token = codex.create_token(PAYLOAD, ttl_seconds=3600)
            assert codex.get_token_data(token) == PAYLOAD
            codex.delete_token(token)

    contenders = {
        "keel create + consume": token_pairs(keel, PAYLOAD, ARGS.pairs),
        "codex-django create + get + delete": codex_round,
    }
    timings = harness.interleave(contenders, ARGS.repeats, per=ARGS.pairs, warmup=True)
    keel_rate = 1 / timings.median("keel create + consume")
    rows = [
        [name, 1 / (m := timings.median(name)), m * 1e6, 1 / m / keel_rate, trips]
        for name, trips in zip(contenders, ("1 + 1", "1 + 2"), strict=True)
    ]
    report.table(
        "contender; pairs/s|{:,.0f}; µs per pair|{:.1f}; vs keel|{:.0%}; "
        "round trips (create + consume)",
        rows,
        caption=f"{ARGS.pairs:,} pairs per round, median of {ARGS.repeats} interleaved rounds.",
    )
    report.text(
        "codex-django opens a new Redis connection per operation and consumes in two commands "
        "(not atomic: two requests can both read the payload). No goal against it is set: "
        "comparison only."
    )
    report.data["tokens"] = {row[0]: row[1] for row in rows}


def bench_mixins(report: Report) -> None:
    from django.db import models
    from pytoolbox.django.models.mixins import AutoUpdateFieldsMixin as PtbAuto
    from pytoolbox.django.models.mixins import UpdatePreconditionsMixin as PtbGuard

    from keel.models.mixins import AutoUpdateFieldsMixin as KeelAuto
    from keel.models.mixins import UpdatePreconditionsMixin as KeelGuard

    wide: dict[str, Any] = {f"c{i}": models.CharField(max_length=50) for i in range(10)}
    wide |= {f"n{i}": models.IntegerField() for i in range(6)}
    wide |= {f"b{i}": models.BooleanField() for i in range(4)}
    guard = {"name": models.CharField(max_length=50), "version": models.IntegerField()}

    def make(name: str, base: type[Any], fields: dict[str, Any]) -> type[Any]:
        bases = (base,) if base is models.Model else (base, models.Model)
        return make_model(name, bases, {key: field.clone() for key, field in fields.items()})

    tracked = {
        "plain Django": make("SeedPlain", models.Model, wide),
        "keel AutoUpdateFieldsMixin": make("SeedKeelAuto", KeelAuto, wide),
        "pytoolbox AutoUpdateFieldsMixin": make("SeedPtbAuto", PtbAuto, wide),
    }
    guarded = {
        "keel UpdatePreconditionsMixin": make("SeedKeelGuard", KeelGuard, guard),
        "pytoolbox UpdatePreconditionsMixin": make("SeedPtbGuard", PtbGuard, guard),
    }
    row = {f"c{i}": f"value {i}" for i in range(10)} | {f"n{i}": i for i in range(6)}
    row |= {f"b{i}": bool(i % 2) for i in range(4)}
    for model in tracked.values():
        model.objects.bulk_create(model(**row) for _ in range(ARGS.load_rows))
    for model in guarded.values():
        model.objects.create(pk=1, name="start", version=0)
    plain_guard = guarded["keel UpdatePreconditionsMixin"]
    values = itertools.count(1000)

    def save_one(model: type[Any]) -> Callable[[], Any]:
        objs = list(model.objects.all()[: ARGS.saves])

        def run() -> None:
            for obj in objs:
                obj.n0 = next(values)  # a new value every time: no save is a no-op
                obj.save()

        return run

    def guarded_save(model: type[Any]) -> Callable[[], Any]:
        def run() -> None:
            obj = model.objects.get(pk=1)
            for _ in range(ARGS.saves):
                current = obj.version
                obj.version = current + 1
                obj.name = f"v{current + 1}"
                obj.save(pre_filters={"version": current})

        return run

    def plain_update() -> None:
        current = plain_guard.objects.get(pk=1).version
        for _ in range(ARGS.saves):
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

    guard_runs = {"plain filter(version=v).update()": plain_update}
    guard_runs |= {name: guarded_save(model) for name, model in guarded.items()}
    load_t, save_t, guard_t = (
        harness.interleave(group, ARGS.repeats, warmup=True)
        for group in (
            {name: lambda m=model: list(m.objects.all()) for name, model in tracked.items()},
            {name: save_one(model) for name, model in tracked.items()},
            guard_runs,
        )
    )
    plain_load, plain_save = load_t.median("plain Django"), save_t.median("plain Django")
    rows = []
    for name in tracked:
        load, save = load_t.median(name), save_t.median(name)
        rows.append(
            [name, load * 1e3, load / plain_load, save / ARGS.saves * 1e6, save / plain_save]
        )
    report.table(
        "contender; load (ms)|{:.1f}; x plain|{:.2f}; save one field (µs)|{:.0f}; x plain|{:.2f}",
        rows,
        caption=f"Load = list() of {ARGS.load_rows:,} rows of 20 fields; save = change one field "
        f"and save(), {ARGS.saves} instances; median of {ARGS.repeats} interleaved rounds.",
    )
    keel_load = rows[1][2]
    report.goal("keel load ≤ 1.20x plain", f"{keel_load:.2f}x", keel_load <= 1.2)
    report.data["mixins"] = {f"{row[0]} (PostgreSQL)": row[2] for row in rows}
    floor = guard_t.median("plain filter(version=v).update()")
    report.table(
        "contender; µs per guarded save|{:.0f}; x floor|{:.2f}",
        [[n, guard_t.median(n) / ARGS.saves * 1e6, guard_t.median(n) / floor] for n in guard_runs],
        caption=f"Guarded save = save(pre_filters={{'version': v}}) bumping the version, "
        f"{ARGS.saves} saves in a row on one row; the floor is the conditional UPDATE written "
        "by hand.",
    )
    report.text(
        "No speed goal for the guarded save is set: comparison only (keel runs each guarded "
        "save in a savepoint, so that a refused save leaves the caller's transaction usable)."
    )


# Each comparison: what runs it, its title, the contender it sets against keel, that one's module.
PARTS: list[tuple[Callable[[Report], None], str, str, str]] = [
    (bench_fixtures, "Fixture upsert: codex-django against keel, {rows:,} rows (PostgreSQL)",
     "codex-django JsonFixtureUpsertCommand", "codex_django.system.management.base_commands"),
    (bench_singleton, "Singleton fixture: codex-django against keel (PostgreSQL, Redis)",
     "codex-django SingletonFixtureUpdateCommand", "codex_django.system.mixins.settings"),
    (bench_site_settings, "Site settings read: codex-django's Redis manager against keel",
     "codex-django site-settings manager", "codex_django.core.redis.managers.settings"),
    (bench_tokens, "Action tokens: codex-django against keel (Redis)",
     "codex-django JsonActionTokenRedisManager", "codex_django.system.redis.managers.tokens"),
    (bench_mixins, "Model mixins: pytoolbox against keel (PostgreSQL)",
     "pytoolbox 14.12.3 mixins", "pytoolbox.django.models.mixins"),
]  # fmt: skip


def main() -> None:
    prefix = harness.key_prefix()
    harness.setup_django(
        {"default": harness.database("postgres", DB_NAME, ARGS.pg_host, fresh=True)},
        DEBUG=False,
        USE_I18N=True,
        LANGUAGE_CODE="en",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        KEEL={"REDIS_URL": ARGS.redis_url, "KEY_PREFIX": prefix},
        # codex-django reads these three (its keys become "{PROJECT_NAME}:...").
        REDIS_URL=ARGS.redis_url,
        PROJECT_NAME=f"{prefix}-codex",
        CODEX_REDIS_ENABLED=True,
        # codex-django's settings mixins import its encrypted fields, which demand a key.
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", "keel", verbosity=0)
    with contextlib.suppress(ImportError):
        from loguru import logger  # codex-django logs every import step through loguru

        logger.remove()
    report = Report("seeds.py")
    report.text(f"keel bench/seeds.py — {servers()}; {platform.machine()}")
    try:
        for run, title, contender, module in PARTS:
            report.heading(title.format(rows=ARGS.rows))
            why = unavailable(module)
            if why:
                report.text(f"Skipped: {why}.")
                report.skip(f"{contender}: {why}")
                print(f"SKIPPED {contender}: {why}", file=sys.stderr, flush=True)
                continue
            started = time.perf_counter()
            run(report)
            took = time.perf_counter() - started
            print(f"  seeds: {run.__name__} done in {took:.0f} s", file=sys.stderr)
    finally:
        harness.clean_redis(ARGS.redis_url, prefix)
        connections.close_all()
        harness.drop("postgres", DB_NAME, ARGS.pg_host)
        shutil.rmtree(WORKDIR, ignore_errors=True)
    report.emit(ARGS.json)


if __name__ == "__main__":
    main()
