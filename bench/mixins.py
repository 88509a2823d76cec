"""Change tracking cost: keel against plain Django, django-dirtyfields and model-utils.

    .venv/bin/python bench/mixins.py [--rows 10000] [--repeats 7] [--saves 300] [--no-postgres]

A 20-field model (id, 8 CharField, 5 IntegerField, Boolean, Decimal, DateTime, JSON, FK,
Text) is declared four times: plain Django, keel's ``AutoUpdateFieldsMixin``,
django-dirtyfields' ``DirtyFieldsMixin`` and django-model-utils' ``FieldTracker()`` (all
fields). Each holds ``--rows`` identical rows in an in-memory SQLite database and, in the
same run, in a PostgreSQL database (``keel_bench_mixins`` on 127.0.0.1:5432, user
``postgres``; created if missing, skipped with a note when the server is unreachable).
Contenders run in rounds whose order rotates every repeat; the tables show medians and ratios
to plain Django measured in the same run:

- load: ``list(Model.objects.all())``;
- load + read: the same, then every field of every instance read once;
- memory: bytes allocated per loaded instance (``tracemalloc``), nothing changed;
- save: one instance, one CharField changed, saved the contender's idiomatic way (plain
  ``save()``; keel ``save()``, which writes that column only; dirtyfields
  ``save_dirty_fields()``; model-utils ``save(update_fields=tracker.changed())``), per save.

Goals: keel's load ≤ 1.0x plain Django on SQLite and on PostgreSQL, and memory ≤ 1.1x plain
until a change.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import django
from django.conf import settings

PG_NAME = "keel_bench_mixins"


def postgres_database() -> dict[str, Any] | None:
    """The PostgreSQL settings (the database created if missing), or None if unreachable."""
    if "--no-postgres" in sys.argv:
        return None
    try:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True, connect_timeout=3
        ) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [PG_NAME]
            ).fetchone():
                conn.execute(f'CREATE DATABASE "{PG_NAME}"')
    except Exception as exc:  # any reason: the SQLite half still runs
        print(f"PostgreSQL skipped: {exc}\n")
        return None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": PG_NAME,
        "USER": "postgres",
        "HOST": "127.0.0.1",
    }


DATABASES: dict[str, Any] = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
}
_pg = postgres_database()
if _pg is not None:
    DATABASES["postgres"] = _pg

settings.configure(
    DATABASES=DATABASES,
    INSTALLED_APPS=["django.contrib.contenttypes", "keel"],
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()

from dirtyfields import DirtyFieldsMixin
from django.db import connections, models
from django.utils import timezone
from model_utils import FieldTracker

from keel.models.mixins import AutoUpdateFieldsMixin


class Author(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "bench"


def twenty_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {f"c{i}": models.CharField(max_length=50) for i in range(1, 9)}
    fields.update({f"i{i}": models.IntegerField() for i in range(1, 6)})
    fields.update(
        flag=models.BooleanField(default=False),
        amount=models.DecimalField(max_digits=10, decimal_places=2),
        at=models.DateTimeField(),
        data=models.JSONField(default=dict),
        author=models.ForeignKey(Author, null=True, on_delete=models.SET_NULL, related_name="+"),
        text=models.TextField(blank=True),
    )
    return fields


def make(name: str, bases: tuple[type, ...], **extra: Any) -> type[models.Model]:
    meta = type("Meta", (), {"app_label": "bench"})
    attrs = {"__module__": __name__, "Meta": meta, **twenty_fields(), **extra}
    return type(name, bases, attrs)


Plain = make("Plain", (models.Model,))
Keel = make("Keel", (AutoUpdateFieldsMixin,))
Dirty = make("Dirty", (DirtyFieldsMixin, models.Model))
Tracked = make("Tracked", (models.Model,), tracker=FieldTracker())
CONTENDERS: dict[str, type[models.Model]] = {
    "plain Django": Plain,
    "keel AutoUpdateFieldsMixin": Keel,
    "django-dirtyfields": Dirty,
    "model-utils FieldTracker": Tracked,
}
FIELD_NAMES = [f.attname for f in Plain._meta.concrete_fields]


DB_LABELS = {"default": "SQLite in memory", "postgres": "PostgreSQL"}


def populate(rows: int, using: str) -> None:
    with connections[using].schema_editor() as editor:
        for model in (Author, *CONTENDERS.values()):
            editor.execute(
                f"DROP TABLE IF EXISTS {editor.quote_name(model._meta.db_table)} CASCADE"
                if connections[using].vendor == "postgresql"
                else f"DROP TABLE IF EXISTS {editor.quote_name(model._meta.db_table)}"
            )
        editor.create_model(Author)
        for model in CONTENDERS.values():
            editor.create_model(model)
    author = Author.objects.using(using).create(name="ann")
    now = timezone.now()
    for model in CONTENDERS.values():
        model._default_manager.using(using).bulk_create(
            [
                model(
                    **{f"c{i}": f"value {n} {i}" for i in range(1, 9)},
                    **{f"i{i}": n * i for i in range(1, 6)},
                    flag=bool(n % 2),
                    amount=Decimal("12.50"),
                    at=now,
                    data={"n": n, "tags": ["a", "b"]},
                    author=author,
                    text="some text",
                )
                for n in range(rows)
            ],
            batch_size=1000,
        )


def timed(func: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def load(model: type[models.Model], using: str = "default") -> list[models.Model]:
    return list(model._default_manager.using(using).all())


def load_and_read(model: type[models.Model], using: str = "default") -> None:
    for obj in model._default_manager.using(using).all():
        for name in FIELD_NAMES:
            getattr(obj, name)


def memory_per_instance(model: type[models.Model], rows: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    objs = load(model)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(objs) == rows
    return (after - before) / rows


def save_one_field(model: type[models.Model], saves: int, using: str = "default") -> float:
    obj = model._default_manager.using(using).get(pk=1)
    start = time.perf_counter()
    for n in range(saves):
        obj.c1 = f"changed {n}"
        if model is Dirty:
            obj.save_dirty_fields()
        elif model is Tracked:
            obj.save(update_fields=obj.tracker.changed())
        else:
            obj.save()
    return (time.perf_counter() - start) / saves


Medians = dict[str, dict[str, float]]


def measure(names: list[str], args: argparse.Namespace, using: str) -> Medians:
    """Medians per contender of load, load + read, save (and memory on SQLite)."""
    results: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for model in CONTENDERS.values():  # warm up caches and code paths
        load(model, using)
        save_one_field(model, 5, using)
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            model = CONTENDERS[name]
            runs = results[name]
            runs.setdefault("load", []).append(timed(lambda m=model: load(m, using)))
            runs.setdefault("read", []).append(timed(lambda m=model: load_and_read(m, using)))
            if using == "default":
                runs.setdefault("mem", []).append(memory_per_instance(model, args.rows))
            runs.setdefault("save", []).append(save_one_field(model, args.saves, using))
    return {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}


def print_table(med: Medians, names: list[str], first: str, memory: bool) -> None:
    base = med["plain Django"]
    columns = ["load (ms)", "x plain", "load + read (ms)", "x plain"]
    if memory:
        columns += ["memory (B/instance)", "x plain"]
    columns += ["save one field (µs)", "x plain"]
    print(f"| {first} | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name in names:
        m = med[name]
        cells = [
            f"{m['load'] * 1000:.1f}",
            f"{m['load'] / base['load']:.2f}",
            f"{m['read'] * 1000:.1f}",
            f"{m['read'] / base['read']:.2f}",
        ]
        if memory:
            cells += [f"{m['mem']:.0f}", f"{m['mem'] / base['mem']:.2f}"]
        cells += [f"{m['save'] * 1e6:.0f}", f"{m['save'] / base['save']:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


def goal(text: str, ratio: float, limit: float) -> None:
    print(
        f"Goal {text} ≤ {limit:.2f}x plain: {ratio:.2f}x → {'met' if ratio <= limit else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--saves", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    aliases = [a for a in ("default", "postgres") if a in connections.settings]
    for using in aliases:
        populate(args.rows, using)

    names = list(CONTENDERS)
    medians = {using: measure(names, args, using) for using in aliases}
    versions = f"Python {platform.python_version()}, Django {django.get_version()}"
    if "postgres" in aliases:
        with connections["postgres"].cursor() as cursor:
            cursor.execute("SHOW server_version")
            versions += f", PostgreSQL {cursor.fetchone()[0].split()[0]}"
    print(
        f"{versions}; {args.rows} rows x 20 fields, medians of {args.repeats} interleaved "
        f"repeats; save: median of {args.repeats} x {args.saves} saves.\n"
    )
    print("SQLite in memory (the Python cost alone):\n")
    print_table(medians["default"], names, "contender", memory=True)
    if "postgres" in aliases:
        print("\nPostgreSQL on loopback, same run:\n")
        print_table(medians["postgres"], names, "contender (PostgreSQL)", memory=False)
    print()
    keel = "keel AutoUpdateFieldsMixin"
    for using in aliases:
        med = medians[using]
        label = "SQLite" if using == "default" else "PostgreSQL"
        goal(f"load on {label}", med[keel]["load"] / med["plain Django"]["load"], 1.0)
    sqlite = medians["default"]
    goal("memory", sqlite[keel]["mem"] / sqlite["plain Django"]["mem"], 1.1)


if __name__ == "__main__":
    main()
