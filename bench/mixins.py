"""Change tracking cost: keel against plain Django, django-dirtyfields and model-utils, on
SQLite in memory and on PostgreSQL (skipped with a note when unreachable)."""

from __future__ import annotations

import gc
import tracemalloc
from decimal import Decimal
from typing import Any

import harness
from cases import make_model, recreate_tables
from harness import Report, interleave, medians, options, timed

ARGS = options(__doc__, rows=10_000, repeats=7, saves=300)
DATABASES: dict[str, Any] = {"default": harness.database("sqlite", "")}
try:
    DATABASES["postgres"] = harness.database("postgres", "keel_bench_mixins", ARGS.pg_host)
except Exception as exc:  # any reason: the SQLite half still runs
    SKIPPED = f"PostgreSQL: {exc}"
else:
    SKIPPED = ""
harness.setup_django(DATABASES, DEFAULT_AUTO_FIELD="django.db.models.AutoField")

from dirtyfields import DirtyFieldsMixin
from django.db import models
from django.utils import timezone
from model_utils import FieldTracker

from keel.models.mixins import AutoUpdateFieldsMixin

Author = make_model(
    "Author", (models.Model,), {"name": models.CharField(max_length=50)}, "bench", create=False
)


def make(name: str, bases: tuple[type, ...], **extra: Any) -> type[Any]:
    return make_model(name, bases, twenty_fields(), "bench", create=False, **extra)


def twenty_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {f"c{i}": models.CharField(max_length=50) for i in range(1, 9)}
    fields |= {f"i{i}": models.IntegerField() for i in range(1, 6)}
    return fields | {
        "flag": models.BooleanField(default=False),
        "amount": models.DecimalField(max_digits=10, decimal_places=2),
        "at": models.DateTimeField(),
        "data": models.JSONField(default=dict),
        "author": models.ForeignKey(Author, null=True, on_delete=models.SET_NULL, related_name="+"),
        "text": models.TextField(blank=True),
    }


# Each contender's model and its idiomatic save of what changed.
CONTENDERS: dict[str, tuple[type[Any], Any]] = {
    "plain Django": (make("Plain", (models.Model,)), "save"),
    "keel AutoUpdateFieldsMixin": (make("Keel", (AutoUpdateFieldsMixin,)), "save"),
    "django-dirtyfields": (make("Dirty", (DirtyFieldsMixin, models.Model)), "save_dirty_fields"),
    "model-utils FieldTracker": (
        make("Tracked", (models.Model,), tracker=FieldTracker()),
        lambda obj: obj.save(update_fields=obj.tracker.changed()),
    ),
}
FIELD_NAMES = [f.attname for f in CONTENDERS["plain Django"][0]._meta.concrete_fields]


def populate(rows: int, using: str) -> None:
    recreate_tables([Author, *(model for model, _ in CONTENDERS.values())], using)
    author = Author.objects.using(using).create(name="ann")
    now = timezone.now()
    values = {"amount": Decimal("12.50"), "at": now, "author": author, "text": "some text"}
    for model, _ in CONTENDERS.values():
        model._default_manager.using(using).bulk_create(
            [
                model(
                    **{f"c{i}": f"value {n} {i}" for i in range(1, 9)},
                    **{f"i{i}": n * i for i in range(1, 6)},
                    **values,
                    flag=bool(n % 2),
                    data={"n": n, "tags": ["a", "b"]},
                )
                for n in range(rows)
            ],
            batch_size=1000,
        )


def load(model: type[Any], using: str = "default") -> list[Any]:
    return list(model._default_manager.using(using).all())


def load_and_read(model: type[Any], using: str) -> None:
    for obj in model._default_manager.using(using).all():
        for name in FIELD_NAMES:
            getattr(obj, name)


def memory_per_instance(model: type[Any], rows: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    objs = load(model)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(objs) == rows
    return (after - before) / rows


def save_one_field(model: type[Any], save: Any, saves: int, using: str) -> float:
    obj = model._default_manager.using(using).get(pk=1)
    save = getattr(type(obj), save) if isinstance(save, str) else save

    def run() -> None:
        for n in range(saves):
            obj.c1 = f"changed {n}"
            save(obj)

    return timed(run) / saves


def collected(run: Any) -> float:
    gc.collect()
    return timed(run)


def measure(using: str) -> dict[str, dict[str, float]]:
    """Medians per contender of load, load + read, save (and memory on SQLite)."""
    metrics = {
        "load": lambda model, save: collected(lambda: load(model, using)),
        "read": lambda model, save: collected(lambda: load_and_read(model, using)),
        "mem": lambda model, save: memory_per_instance(model, ARGS.rows),
        "save": lambda model, save: save_one_field(model, save, ARGS.saves, using),
    }
    if using != "default":
        del metrics["mem"]
    for model, save in CONTENDERS.values():  # warm up caches and code paths
        load(model, using)
        save_one_field(model, save, 5, using)
    results: dict[str, dict[str, list[float]]] = {name: {} for name in CONTENDERS}

    def contender(name: str) -> Any:
        def run() -> None:
            for key, metric in metrics.items():
                results[name].setdefault(key, []).append(metric(*CONTENDERS[name]))

        return run

    interleave({name: contender(name) for name in CONTENDERS}, ARGS.repeats)
    return {name: medians(results[name]) for name in CONTENDERS}


def main() -> None:
    aliases = list(DATABASES)
    for using in aliases:
        populate(ARGS.rows, using)
    measured = {using: measure(using) for using in aliases}
    servers = [harness.db_version("postgres")] if "postgres" in aliases else []
    report = Report("mixins.py")
    if SKIPPED:
        report.skip(SKIPPED)
    report.text(
        f"{harness.versions(*servers)}; {ARGS.rows} rows x 20 fields, medians of {ARGS.repeats} "
        f"interleaved repeats; save: median of {ARGS.repeats} x {ARGS.saves} saves."
    )
    # Each metric's column (with its format) and scale; every one is followed by its ratio.
    titles = {
        "load": ("load (ms)|{:.1f}", 1e3),
        "read": ("load + read (ms)|{:.1f}", 1e3),
        "mem": ("memory (B/instance)|{:.0f}", 1),
        "save": ("save one field (µs)|{:.0f}", 1e6),
    }
    for using in aliases:
        med, sqlite = measured[using], using == "default"
        base, keys = med["plain Django"], list(med["plain Django"])
        columns = ["contender" if sqlite else "contender (PostgreSQL)"]
        columns += [title for k in keys for title in (titles[k][0], "x plain|{:.2f}")]
        rows = [
            [name, *(v for k in keys for v in (m[k] * titles[k][1], m[k] / base[k]))]
            for name, m in med.items()
        ]
        captions = (
            "PostgreSQL on loopback, same run:",
            "SQLite in memory (the Python cost alone):",
        )
        report.table(columns, rows, caption=captions[sqlite])
        if sqlite:
            report.data["mixins"] = {f"{row[0]} (SQLite)": row[2] for row in rows}
    goals = [
        (f"load on {'SQLite' if u == 'default' else 'PostgreSQL'}", u, "load", 1.0) for u in aliases
    ]
    for text, using, key, limit in [*goals, ("memory", "default", "mem", 1.1)]:
        med = measured[using]
        ratio = med["keel AutoUpdateFieldsMixin"][key] / med["plain Django"][key]
        report.goal(f"{text} ≤ {limit:.2f}x plain", f"{ratio:.2f}x", ratio <= limit)
    report.emit(ARGS.json)


if __name__ == "__main__":
    main()
