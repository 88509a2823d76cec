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
The output is markdown: one table per comparison, each with its goal and whether it is met.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import django
import psycopg
import redis
from cryptography.fernet import Fernet
from django.conf import settings

DB_NAME = "keel_bench_seeds"
SETTINGS_VALUES: dict[str, Any] = {
    "site_name": "Acme Tools",
    "phone": "+1 555 0100",
    "email": "hello@acme.test",
    "address_street": "1 Main Street",
    "address_locality": "Springfield",
    "maintenance_mode": False,
    "google_analytics_id": "G-ABC123",
    "email_from": "team@acme.test",
    "latitude": Decimal("48.858400"),
    "instagram_url": "https://instagram.com/acme",
}
PAYLOAD = {"user_id": 42, "email": "someone@example.com", "next": "/account/"}
SKIPPED: list[str] = []


def skip(contender: str, reason: str) -> None:
    """Record a contender that cannot run, and say so on stderr at once."""
    SKIPPED.append(f"{contender}: {reason}")
    print(f"SKIPPED {contender}: {reason}", file=sys.stderr, flush=True)


def configure(args: argparse.Namespace, prefix: str) -> None:
    with psycopg.connect(
        host=args.pg_host, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    settings.configure(
        DEBUG=False,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": DB_NAME,
                "USER": "postgres",
                "HOST": args.pg_host,
                "CONN_MAX_AGE": None,
            }
        },
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "keel"],
        USE_TZ=True,
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
        SECRET_KEY="bench-not-secret",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", "keel", verbosity=0)


def make_model(name: str, bases: tuple[type[Any], ...], fields: dict[str, Any]) -> type[Any]:
    meta = type("Meta", (), {"app_label": "keel"})
    return type(name, bases, {"__module__": __name__, "Meta": meta, **fields})


def create_tables(*models_: type[Any]) -> None:
    from django.db import connection

    with connection.schema_editor() as editor:
        for model in models_:
            editor.create_model(model)


def rotate(names: list[str], repeat: int) -> list[str]:
    shift = repeat % len(names)
    return names[shift:] + names[:shift]


def timed(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def versions() -> str:
    from django.db import connection

    client = redis.Redis.from_url(settings.REDIS_URL)
    redis_version = client.info("server")["redis_version"]
    client.close()
    server = getattr(connection, "pg_version", 0)
    pieces = [
        f"Python {platform.python_version()}",
        f"Django {django.get_version()}",
        f"PostgreSQL {server // 10000}.{server % 10000}",
        f"Redis {redis_version}",
    ]
    for dist in ("codex-django", "pytoolbox"):
        try:
            from importlib.metadata import version

            pieces.append(f"{dist} {version(dist)}")
        except Exception:
            pieces.append(f"{dist} not installed")
    return ", ".join(pieces)


def goal_line(text: str, ok: bool, measured: str) -> str:
    return f"Goal {text}: {measured} → {'met' if ok else 'NOT met'}."


# --------------------------------------------------------------------------- fixtures


def fixture_rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "model": "keel.seedrow",
            "fields": {
                "key": f"row-{i:07d}",
                "title": f"Title {i}",
                "body": f"Body of row {i}. " * 5,
                "price": f"{i % 10000}.{i % 100:02d}",
                "active": i % 3 != 0,
                "day": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
                "rank": i % 1000,
            },
        }
        for i in range(count)
    ]


def bench_fixtures(args: argparse.Namespace, workdir: Path) -> list[str]:
    from django.core.management import call_command
    from django.db import connection, models

    from keel.fixtures import JsonFixtureUpsertCommand as KeelUpsert

    title = f"#### Fixture upsert: codex-django against keel, {args.rows:,} rows (PostgreSQL)"
    try:
        from codex_django.system.management.base_commands import (
            JsonFixtureUpsertCommand as CodexUpsert,
        )
    except Exception as exc:
        skip("codex-django JsonFixtureUpsertCommand", f"{type(exc).__name__}: {exc}")
        return [title, "", "Skipped: codex-django could not be imported.", ""]

    row_model = make_model(
        "SeedRow",
        (models.Model,),
        {
            "key": models.CharField(max_length=64, unique=True),
            "title": models.CharField(max_length=200),
            "body": models.TextField(),
            "price": models.DecimalField(max_digits=10, decimal_places=2),
            "active": models.BooleanField(),
            "day": models.DateField(),
            "rank": models.IntegerField(),
        },
    )
    create_tables(row_model)
    path = workdir / "rows.json"
    path.write_text(json.dumps(fixture_rows(args.rows)), encoding="utf-8")

    def keel_command() -> Any:
        class Command(KeelUpsert):
            fixture_key = "seeds.rows"
            model_class = row_model
            lookup_field = "key"

        command = Command()
        command.fixture_path = path  # type: ignore[misc]
        return command

    def codex_command() -> Any:
        class Command(CodexUpsert):  # type: ignore[misc]
            fixture_key = "seeds.rows"
            model_class = row_model
            lookup_field = "key"
            fixture_path = path

        return Command()

    def truncate() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f'TRUNCATE "{row_model._meta.db_table}"')

    def run(factory: Callable[[], Any], *options: str) -> Any:
        command = factory()
        call_command(command, *options, verbosity=0, stdout=io.StringIO(), stderr=io.StringIO())
        return command

    times: dict[str, list[float]] = {}

    def sequence(label: str, factory: Callable[[], Any]) -> Callable[[], None]:
        def go() -> None:
            truncate()
            steps = (
                (f"{label} first import", ("--force",)),
                (f"{label} re-import unchanged, hash off (--force)", ("--force",)),
                (f"{label} re-import unchanged, hash on", ()),
            )
            for name, options in steps:
                times.setdefault(name, []).append(timed(lambda o=options: run(factory, *o)))
            assert row_model.objects.count() == args.rows

        return go

    contenders = {"keel": sequence("keel", keel_command), "codex": sequence("codex", codex_command)}
    contenders["keel"]()  # warm-up: code paths, plans, the hash rows
    contenders["codex"]()
    times.clear()
    for repeat in range(args.fixture_repeats):
        for name in rotate(list(contenders), repeat):
            contenders[name]()
    truncate()
    median = {name: statistics.median(values) for name, values in times.items()}
    lines = [
        title,
        "",
        f"Median of {args.fixture_repeats} interleaved rounds; "
        f"one JSON file of {args.rows:,} rows.",
        "",
        "| contender | seconds | rows/s | codex / keel |",
        "|---|---:|---:|---:|",
    ]
    for step in (
        "first import",
        "re-import unchanged, hash off (--force)",
        "re-import unchanged, hash on",
    ):
        for label in ("keel", "codex"):
            seconds = median[f"{label} {step}"]
            rate = "—" if "hash on" in step else f"{args.rows / seconds:,.0f}"
            ratio = median[f"codex {step}"] / median[f"keel {step}"]
            shown = f"{ratio:.1f}x" if label == "codex" else ""
            lines.append(f"| {label}: {step} | {seconds:.3f} | {rate} | {shown} |")
    first = median["codex first import"] / median["keel first import"]
    lines += [
        "",
        goal_line(
            "first import ≥ 20x faster than the update_or_create loop "
            "(here codex-django's command, which is that loop)",
            first >= 20,
            f"{first:.1f}x",
        ),
        "",
    ]
    return lines


def bench_singleton(args: argparse.Namespace, workdir: Path) -> list[str]:
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from keel.fixtures import SingletonFixtureUpdateCommand as KeelSingleton
    from keel.site.models import AbstractSiteSettings as KeelSettingsBase

    title = "#### Singleton fixture: codex-django against keel (PostgreSQL, Redis)"
    try:
        from codex_django.system.management.base_commands import (
            SingletonFixtureUpdateCommand as CodexSingleton,
        )
        from codex_django.system.mixins.settings import AbstractSiteSettings as CodexSettingsBase
    except Exception as exc:
        skip("codex-django SingletonFixtureUpdateCommand", f"{type(exc).__name__}: {exc}")
        return [title, "", "Skipped: codex-django could not be imported.", ""]

    keel_model = make_model("SeedKeelSingleton", (KeelSettingsBase,), settings_fields())
    codex_model = make_model("SeedCodexSingleton", (CodexSettingsBase,), settings_fields())
    create_tables(keel_model, codex_model)
    keel_model.objects.create(pk=1, **SETTINGS_VALUES)
    codex_model.objects.create(pk=1, **SETTINGS_VALUES)
    files = []
    for index, name in enumerate(("Acme Tools", "Acme Tools & Co")):
        path = workdir / f"singleton-{index}.json"
        fields = {k: str(v) if isinstance(v, Decimal) else v for k, v in SETTINGS_VALUES.items()}
        fields |= {"site_name": name, "phone": f"+1 555 01{index:02d}"}
        path.write_text(json.dumps([{"fields": fields}]), encoding="utf-8")
        files.append(path)

    def keel_run(path: Path) -> Any:
        class Command(KeelSingleton):
            fixture_key = "seeds.singleton"
            model_class = keel_model

        command = Command()
        command.fixture_path = path  # type: ignore[misc]
        call_command(command, "--force", verbosity=0, stdout=io.StringIO(), stderr=io.StringIO())
        return command

    def codex_run(path: Path) -> Any:
        class Command(CodexSingleton):  # type: ignore[misc]
            fixture_key = "seeds.singleton"
            model_class = codex_model
            fixture_path = path

        command = Command()
        call_command(command, "--force", verbosity=0, stdout=io.StringIO(), stderr=io.StringIO())
        return command

    runs = {"keel": keel_run, "codex-django": codex_run}
    queries: dict[str, int] = {}
    for name, run in runs.items():
        run(files[0])
        with CaptureQueriesContext(connection) as captured:
            command = run(files[1])
        queries[name] = len(captured)
        assert sorted(command.updated_fields) == ["phone", "site_name"], command.updated_fields
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name in rotate(list(runs), repeat):
            for path in files:  # each run changes two fields
                times[name].append(timed(lambda p=path, n=name: runs[n](p)))
    median = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    keel = median["keel"]
    lines = [
        title,
        "",
        f"One run = the command with --force on a one-row file changing two of ten fields; "
        f"median of {args.repeats * 2} runs per contender.",
        "",
        "| contender | ms per run | vs keel | SQL queries per run |",
        "|---|---:|---:|---:|",
    ]
    for name, value in median.items():
        lines.append(f"| {name} | {value:.2f} | {value / keel:.2f}x | {queries[name]} |")
    lines += [
        "",
        "No speed goal is set for this command: comparison only "
        "(keel saves only the changed fields; codex-django saves all, then writes the Redis hash).",
        "",
    ]
    return lines


# --------------------------------------------------------------------------- site settings


def settings_fields() -> dict[str, Any]:
    from django.db import models

    return {
        "site_name": models.CharField(max_length=100),
        "phone": models.CharField(max_length=50),
        "email": models.EmailField(),
        "address_street": models.CharField(max_length=255),
        "address_locality": models.CharField(max_length=255),
        "maintenance_mode": models.BooleanField(default=False),
        "google_analytics_id": models.CharField(max_length=50),
        "email_from": models.EmailField(),
        "latitude": models.DecimalField(max_digits=9, decimal_places=6, null=True),
        "instagram_url": models.URLField(),
    }


def bench_site_settings(args: argparse.Namespace) -> list[str]:
    from django.test.utils import override_settings

    from keel.site.cache import clear_local_copies
    from keel.site.models import AbstractSiteSettings as KeelSettingsBase

    title = "#### Site settings read: codex-django's Redis manager against keel"
    try:
        from codex_django.core.redis.managers.settings import get_site_settings_manager
        from codex_django.system.mixins.settings import AbstractSiteSettings as CodexSettingsBase
    except Exception as exc:
        skip("codex-django site-settings manager", f"{type(exc).__name__}: {exc}")
        return [title, "", "Skipped: codex-django could not be imported.", ""]

    keel_model = make_model("SeedKeelSettings", (KeelSettingsBase,), settings_fields())
    codex_model = make_model("SeedCodexSettings", (CodexSettingsBase,), settings_fields())
    create_tables(keel_model, codex_model)
    keel_model.objects.create(pk=1, **SETTINGS_VALUES)
    codex_model.objects.create(pk=1, **SETTINGS_VALUES)  # its AFTER_SAVE hook fills Redis
    names = list(SETTINGS_VALUES)
    expected = tuple(SETTINGS_VALUES.values())

    def keel_read() -> tuple[Any, ...]:
        obj = keel_model.load()
        return tuple(getattr(obj, name) for name in names)

    def codex_read() -> tuple[Any, ...]:
        data = get_site_settings_manager().load_cached(codex_model)
        return tuple(data[name] for name in names)

    window = override_settings(KEEL={**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 3600})
    every_read = override_settings(KEEL={**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0})

    def keel_under(override: Any) -> Callable[[int], float]:
        def run(reads: int) -> float:
            with override:
                keel_read()
                return timed(lambda: [keel_read() for _ in range(reads)]) / reads * 1e6

        return run

    def codex(reads: int) -> float:
        return timed(lambda: [codex_read() for _ in range(reads)]) / reads * 1e6

    with every_read:
        assert keel_read() == expected
    assert codex_read() == expected, codex_read()
    contenders: dict[str, Callable[[int], float]] = {
        "keel, local window": keel_under(window),
        "keel, Redis (local window off)": keel_under(every_read),
        "codex-django load_cached (HGETALL)": codex,
    }
    results: dict[str, list[float]] = {name: [] for name in contenders}
    for repeat in range(args.repeats):
        for name in rotate(list(contenders), repeat):
            clear_local_copies()
            reads = args.reads if name.startswith("keel, local") else max(args.reads // 5, 50)
            results[name].append(contenders[name](reads))
    median = {name: statistics.median(values) for name, values in results.items()}
    codex_us = median["codex-django load_cached (HGETALL)"]
    lines = [
        title,
        "",
        f"One read = get the settings and read the same ten fields; median of {args.repeats} "
        f"interleaved rounds of {args.reads:,} reads ({max(args.reads // 5, 50):,} for the "
        "contenders that go to Redis).",
        "",
        "| contender | µs per read | speed vs codex-django | round trips per read |",
        "|---|---:|---:|---|",
    ]
    trips = {
        "keel, local window": "0",
        "keel, Redis (local window off)": "1 Redis",
        "codex-django load_cached (HGETALL)": "1 Redis (a new connection each read)",
    }
    for name, value in median.items():
        lines.append(f"| {name} | {value:.2f} | {codex_us / value:.1f}x | {trips[name]} |")
    lines += [
        "",
        "No goal against codex-django is set (keel's goals are against django-solo, in the "
        "table above): comparison only.",
        "",
    ]
    return lines


# --------------------------------------------------------------------------- tokens


def bench_tokens(args: argparse.Namespace) -> list[str]:
    from keel.tokens import JsonActionTokenRedisManager as KeelTokens

    title = "#### Action tokens: codex-django against keel (Redis)"
    try:
        from codex_django.system.redis.managers.tokens import (
            JsonActionTokenRedisManager as CodexTokens,
        )
    except Exception as exc:
        skip("codex-django JsonActionTokenRedisManager", f"{type(exc).__name__}: {exc}")
        return [title, "", "Skipped: codex-django could not be imported.", ""]

    keel = KeelTokens(prefix="seeds:confirm")
    codex = CodexTokens(prefix="seeds:confirm")
    pairs = args.pairs

    def keel_round() -> None:
        for _ in range(pairs):
            assert keel.consume_token(keel.create_token(PAYLOAD)) == PAYLOAD

    def codex_round() -> None:
        for _ in range(pairs):
            token = codex.create_token(PAYLOAD, ttl_seconds=3600)
            assert codex.get_token_data(token) == PAYLOAD
            codex.delete_token(token)

    contenders = {
        "keel create + consume": keel_round,
        "codex-django create + get + delete": codex_round,
    }
    for run in contenders.values():
        run()
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for repeat in range(args.repeats):
        for name in rotate(list(contenders), repeat):
            seconds[name].append(timed(contenders[name]))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    keel_rate = pairs / median["keel create + consume"]
    trips = {"keel create + consume": "1 + 1", "codex-django create + get + delete": "1 + 2"}
    lines = [
        title,
        "",
        f"{pairs:,} pairs per round, median of {args.repeats} interleaved rounds.",
        "",
        "| contender | pairs/s | µs per pair | vs keel | round trips (create + consume) |",
        "|---|---:|---:|---:|---|",
    ]
    for name, value in median.items():
        rate = pairs / value
        lines.append(
            f"| {name} | {rate:,.0f} | {value / pairs * 1e6:.1f} | {rate / keel_rate:.0%} "
            f"| {trips[name]} |"
        )
    lines += [
        "",
        "codex-django opens a new Redis connection per operation and consumes in two commands "
        "(not atomic: two requests can both read the payload). No goal against it is set: "
        "comparison only.",
        "",
    ]
    return lines


# --------------------------------------------------------------------------- mixins


def bench_mixins(args: argparse.Namespace) -> list[str]:
    from django.db import models

    from keel.models.mixins import AutoUpdateFieldsMixin as KeelAuto
    from keel.models.mixins import UpdatePreconditionsMixin as KeelGuard

    title = "#### Model mixins: pytoolbox against keel (PostgreSQL)"
    if django.VERSION < (6, 0):
        skip(
            "pytoolbox 14.12.3 mixins",
            f"needs Django ≥ 6 (Python ≥ 3.12); this run has Django {django.get_version()}",
        )
        return [
            title,
            "",
            f"Skipped: pytoolbox 14.12.3 needs Django 6; this run has "
            f"Django {django.get_version()} (Python {platform.python_version()}).",
            "",
        ]
    try:
        from pytoolbox.django.models.mixins import AutoUpdateFieldsMixin as PtbAuto
        from pytoolbox.django.models.mixins import UpdatePreconditionsMixin as PtbGuard
    except Exception as exc:
        skip("pytoolbox 14.12.3 mixins", f"{type(exc).__name__}: {exc}")
        return [title, "", f"Skipped: pytoolbox could not be imported ({exc}).", ""]

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
    create_tables(*tracked.values(), *guarded.values())
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

    versions_seen: dict[str, int] = {}

    def guarded_save(name: str, model: type[Any]) -> Callable[[], Any]:
        def run() -> None:
            obj = model.objects.get(pk=1)
            for _ in range(args.saves):
                current = obj.version
                obj.version = current + 1
                obj.name = f"v{current + 1}"
                obj.save(pre_filters={"version": current})
            versions_seen[name] = obj.version

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
    for group in (load_runs, save_runs, guard_runs):
        for run in group.values():
            run()
    results: dict[str, list[float]] = {}
    for repeat in range(args.repeats):
        for group in (load_runs, save_runs, guard_runs):
            for name in rotate(list(group), repeat):
                key = f"{id(group)}:{name}"
                results.setdefault(key, []).append(timed(group[name]))
    median = {key: statistics.median(values) for key, values in results.items()}

    def med(group: dict[str, Any], name: str) -> float:
        return median[f"{id(group)}:{name}"]

    plain_load = med(load_runs, "plain Django")
    plain_save = med(save_runs, "plain Django")
    lines = [
        title,
        "",
        f"Load = list() of {args.load_rows:,} rows of 20 fields; save = change one field and "
        f"save(), {args.saves} instances; median of {args.repeats} interleaved rounds.",
        "",
        "| contender | load (ms) | x plain | save one field (µs) | x plain |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in tracked:
        load_ms = med(load_runs, name) * 1e3
        save_us = med(save_runs, name) / args.saves * 1e6
        load_ratio = med(load_runs, name) / plain_load
        save_ratio = med(save_runs, name) / plain_save
        lines.append(
            f"| {name} | {load_ms:.1f} | {load_ratio:.2f} | {save_us:.0f} | {save_ratio:.2f} |"
        )
    keel_load = med(load_runs, "keel AutoUpdateFieldsMixin") / plain_load
    lines += [
        "",
        goal_line("keel load ≤ 1.20x plain", keel_load <= 1.2, f"{keel_load:.2f}x"),
        "",
        f"Guarded save = save(pre_filters={{'version': v}}) bumping the version, {args.saves} "
        "saves in a row on one row; the floor is the conditional UPDATE written by hand.",
        "",
        "| contender | µs per guarded save | x floor |",
        "|---|---:|---:|",
    ]
    floor = med(guard_runs, "plain filter(version=v).update()")
    for name in guard_runs:
        value = med(guard_runs, name)
        lines.append(f"| {name} | {value / args.saves * 1e6:.0f} | {value / floor:.2f} |")
    lines += [
        "",
        "No speed goal for the guarded save is set: comparison only (keel runs "
        "each guarded save in a savepoint, so that a refused save leaves the caller's "
        "transaction usable).",
        "",
    ]
    return lines


def cleanup(args: argparse.Namespace, prefix: str) -> None:
    from django.db import connections

    client = redis.Redis.from_url(args.redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    connections.close_all()
    with psycopg.connect(
        host=args.pg_host, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows of the fixture file")
    parser.add_argument("--fixture-repeats", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--load-rows", type=int, default=5000)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument(
        "--redis-url", default=os.environ.get("KEEL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    )
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated subset: fixtures,singleton,settings,tokens,mixins",
    )
    args = parser.parse_args()
    prefix = f"keelseeds-{uuid.uuid4().hex[:8]}"
    configure(args, prefix)
    try:
        from loguru import logger  # codex-django logs every import step through loguru

        logger.remove()
    except ImportError:
        pass
    parts: dict[str, Callable[[], list[str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        parts = {
            "fixtures": lambda: bench_fixtures(args, workdir),
            "singleton": lambda: bench_singleton(args, workdir),
            "settings": lambda: bench_site_settings(args),
            "tokens": lambda: bench_tokens(args),
            "mixins": lambda: bench_mixins(args),
        }
        wanted = [p for p in args.only.split(",") if p] or list(parts)
        output = [f"keel bench/seeds.py — {versions()}; {platform.machine()}", ""]
        try:
            for name in wanted:
                started = time.perf_counter()
                output += parts[name]()
                print(
                    f"  seeds: {name} done in {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                )
        finally:
            cleanup(args, prefix)
    if SKIPPED:
        output += ["Skipped contenders:", ""] + [f"- SKIPPED {line}" for line in SKIPPED] + [""]
    print("\n".join(output))


if __name__ == "__main__":
    main()
