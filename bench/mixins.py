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

import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cases import make_model
from harness import Report, database, interleave, parser, setup_django, versions

DATABASES: dict[str, Any] = {"default": database("sqlite", "")}
SKIPPED = ""
if "--no-postgres" not in sys.argv:
    try:
        DATABASES["postgres"] = database("postgres", "keel_bench_mixins")
    except Exception as exc:  # any reason: the SQLite half still runs
        SKIPPED = f"PostgreSQL: {exc}"
setup_django(DATABASES, DEFAULT_AUTO_FIELD="django.db.models.AutoField")

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
    return make_model(name, bases, twenty_fields(), "bench", create=False, **extra)


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


def measure(rows: int, repeats: int, saves: int, using: str) -> dict[str, dict[str, float]]:
    """Medians per contender of load, load + read, save (and memory on SQLite)."""
    results: dict[str, dict[str, list[float]]] = {n: {} for n in CONTENDERS}

    def contender(name: str) -> Callable[[], None]:
        model, runs = CONTENDERS[name], results[name]

        def run() -> None:
            runs.setdefault("load", []).append(timed(lambda: load(model, using)))
            runs.setdefault("read", []).append(timed(lambda: load_and_read(model, using)))
            if using == "default":
                runs.setdefault("mem", []).append(memory_per_instance(model, rows))
            runs.setdefault("save", []).append(save_one_field(model, saves, using))

        return run

    for model in CONTENDERS.values():  # warm up caches and code paths
        load(model, using)
        save_one_field(model, 5, using)
    interleave({name: contender(name) for name in CONTENDERS}, repeats)
    return {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--rows", type=int, default=10_000)
    options.add_argument("--repeats", type=int, default=7)
    options.add_argument("--saves", type=int, default=300)
    options.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = options.parse_args()
    aliases = list(DATABASES)
    for using in aliases:
        populate(args.rows, using)
    medians = {using: measure(args.rows, args.repeats, args.saves, using) for using in aliases}
    servers = ()
    if "postgres" in aliases:
        with connections["postgres"].cursor() as cursor:
            cursor.execute("SHOW server_version")
            servers = (f"PostgreSQL {cursor.fetchone()[0].split()[0]}",)
    report = Report("mixins.py")
    if SKIPPED:
        report.skip(SKIPPED)
    report.text(
        f"{versions(*servers)}; {args.rows} rows x 20 fields, medians of {args.repeats} "
        f"interleaved repeats; save: median of {args.repeats} x {args.saves} saves."
    )
    keel = "keel AutoUpdateFieldsMixin"
    for using in aliases:
        med, sqlite = medians[using], using == "default"
        metrics = [
            ("load", "load (ms)", 1e3, "{:.1f}"),
            ("read", "load + read (ms)", 1e3, "{:.1f}"),
        ]
        if sqlite:
            metrics.append(("mem", "memory (B/instance)", 1, "{:.0f}"))
        metrics.append(("save", "save one field (µs)", 1e6, "{:.0f}"))
        columns = ["contender" if sqlite else "contender (PostgreSQL)"]
        for _, title, _, fmt in metrics:
            columns += [f"{title}|{fmt}", "x plain|{:.2f}"]
        base = med["plain Django"]
        rows = [
            [name]
            + [v for key, _, scale, _ in metrics for v in (m[key] * scale, m[key] / base[key])]
            for name, m in med.items()
        ]
        caption = (
            "SQLite in memory (the Python cost alone):"
            if sqlite
            else "PostgreSQL on loopback, same run:"
        )
        report.table(columns, rows, caption=caption)
        if sqlite:
            report.data["mixins"] = {f"{row[0]} (SQLite)": row[2] for row in rows}
    goals = [
        (f"load on {'SQLite' if u == 'default' else 'PostgreSQL'}", u, "load", 1.0) for u in aliases
    ]
    for text, using, key, limit in [*goals, ("memory", "default", "mem", 1.1)]:
        ratio = medians[using][keel][key] / medians[using]["plain Django"][key]
        report.goal(f"{text} ≤ {limit:.2f}x plain", f"{ratio:.2f}x", ratio <= limit)
    report.emit(args.json)


if __name__ == "__main__":
    main()
