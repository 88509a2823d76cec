"""Change tracking cost: keel against plain Django, django-dirtyfields and model-utils.

    .venv/bin/python bench/mixins.py [--rows 10000] [--repeats 7] [--saves 300]

A 20-field model (id, 8 CharField, 5 IntegerField, Boolean, Decimal, DateTime, JSON, FK,
Text) is declared four times: plain Django, keel's ``AutoUpdateFieldsMixin``,
django-dirtyfields' ``DirtyFieldsMixin`` and django-model-utils' ``FieldTracker()`` (all
fields). Each holds ``--rows`` identical rows in an in-memory SQLite database. Contenders run
in rounds whose order rotates every repeat; the table shows medians and ratios to plain
Django measured in the same run:

- load: ``list(Model.objects.all())``;
- load + read: the same, then every field of every instance read once;
- memory: bytes allocated per loaded instance (``tracemalloc``), nothing changed;
- save: one instance, one CharField changed, saved the contender's idiomatic way (plain
  ``save()``; keel ``save()``, which writes that column only; dirtyfields
  ``save_dirty_fields()``; model-utils ``save(update_fields=tracker.changed())``), per save.

Goal: keel's load ≤ 1.2x plain Django and memory ≤ 1.1x plain until a change.
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

settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=["django.contrib.contenttypes", "keel"],
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()

from dirtyfields import DirtyFieldsMixin
from django.db import connection, models
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


def populate(rows: int) -> None:
    with connection.schema_editor() as editor:
        editor.create_model(Author)
        for model in CONTENDERS.values():
            editor.create_model(model)
    author = Author.objects.create(name="ann")
    now = timezone.now()
    for model in CONTENDERS.values():
        model._default_manager.bulk_create(
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


def load(model: type[models.Model]) -> list[models.Model]:
    return list(model._default_manager.all())


def load_and_read(model: type[models.Model]) -> None:
    for obj in model._default_manager.all():
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


def save_one_field(model: type[models.Model], saves: int) -> float:
    obj = model._default_manager.get(pk=1)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--saves", type=int, default=300)
    args = parser.parse_args()
    populate(args.rows)

    names = list(CONTENDERS)
    results: dict[str, dict[str, list[float]]] = {
        n: {"load": [], "read": [], "mem": [], "save": []} for n in names
    }
    for model in CONTENDERS.values():  # warm up caches and code paths
        load(model)
        save_one_field(model, 5)
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            model = CONTENDERS[name]
            results[name]["load"].append(timed(lambda m=model: load(m)))
            results[name]["read"].append(timed(lambda m=model: load_and_read(m)))
            results[name]["mem"].append(memory_per_instance(model, args.rows))
            results[name]["save"].append(save_one_field(model, args.saves))

    med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
    base = med["plain Django"]
    print(
        f"Python {platform.python_version()}, Django {django.get_version()}, SQLite in memory, "
        f"{args.rows} rows x 20 fields, medians of {args.repeats} interleaved repeats; "
        f"save: median of {args.repeats} x {args.saves} saves.\n"
    )
    header = (
        "| contender | load (ms) | x plain | load + read (ms) | x plain | "
        "memory (B/instance) | x plain | save one field (µs) | x plain |"
    )
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        m = med[name]
        print(
            f"| {name} | {m['load'] * 1000:.1f} | {m['load'] / base['load']:.2f} | "
            f"{m['read'] * 1000:.1f} | {m['read'] / base['read']:.2f} | "
            f"{m['mem']:.0f} | {m['mem'] / base['mem']:.2f} | "
            f"{m['save'] * 1e6:.0f} | {m['save'] / base['save']:.2f} |"
        )
    keel = med["keel AutoUpdateFieldsMixin"]
    load_ratio = keel["load"] / base["load"]
    mem_ratio = keel["mem"] / base["mem"]
    print()
    print(
        f"Goal load ≤ 1.20x plain: {load_ratio:.2f}x → {'met' if load_ratio <= 1.2 else 'NOT met'}"
    )
    print(
        f"Goal memory ≤ 1.10x plain: {mem_ratio:.2f}x → {'met' if mem_ratio <= 1.1 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
