"""The models and data several scripts of ``bench/`` measure, defined once."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

# A site settings document of ten fields: every contender reads the same values.
SITE_VALUES: dict[str, Any] = {
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


def site_fields() -> dict[str, Any]:
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


def row_fields() -> dict[str, Any]:
    """The fields of a fixture row: 7 columns, values as strings where a hand-written
    fixture has them."""
    from django.db import models

    return {
        "key": models.CharField(max_length=64, unique=True),
        "title": models.CharField(max_length=200),
        "body": models.TextField(),
        "price": models.DecimalField(max_digits=10, decimal_places=2),
        "active": models.BooleanField(),
        "day": models.DateField(),
        "rank": models.IntegerField(),
    }


def write_fixture(path: Path, model: str, count: int, changed_every: int = 0) -> None:
    """A JSON fixture of ``count`` rows of ``model`` (``app.name``), one row a line; with
    ``changed_every``, the title of every n-th row differs."""
    with path.open("w", encoding="utf-8") as stream:
        stream.write("[\n")
        for i in range(count):
            changed = " (changed)" if changed_every and i % changed_every == 0 else ""
            fields = {
                "key": f"row-{i:07d}",
                "title": f"Title {i}{changed}",
                "body": f"Body of row {i}. " * 5,
                "price": f"{i % 10000}.{i % 100:02d}",
                "active": i % 3 != 0,
                "day": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
                "rank": i % 1000,
            }
            row = json.dumps({"model": model, "fields": fields})
            stream.write(("," if i else "") + row + "\n")
        stream.write("]\n")


def make_model(
    name: str,
    bases: tuple[type[Any], ...],
    fields: dict[str, Any],
    app_label: str = "keel",
    *,
    create: bool = True,
    meta: dict[str, Any] | None = None,
    **attrs: Any,
) -> type[Any]:
    """A model class made at run time (``meta``: more of its ``Meta``), its table created in
    the default database unless ``create`` is false."""
    from django.db import connection

    meta = type("Meta", (), {"app_label": app_label, **(meta or {})})
    model = type(name, bases, {"__module__": __name__, "Meta": meta, **fields, **attrs})
    if create:
        with connection.schema_editor() as editor:
            editor.create_model(model)
    return model


def read_fields(obj: Any) -> tuple[Any, ...]:
    """The ten fields of ``SITE_VALUES`` read from ``obj``: one read of the site settings."""
    return tuple(getattr(obj, name) for name in SITE_VALUES)


def token_pairs(manager: Any, payload: dict[str, Any], pairs: int) -> Callable[[], None]:
    """``pairs`` tokens created then consumed through ``manager``, each checked."""

    def run() -> None:
        for _ in range(pairs):
            assert manager.consume_token(manager.create_token(payload)) == payload

    return run


def recreate_tables(models: list[type[Any]], using: str = "default") -> None:
    """Drop the tables of ``models`` where they exist (in reverse order), then create them."""
    from django.db import connections

    cascade = " CASCADE" if connections[using].vendor == "postgresql" else ""
    with connections[using].schema_editor() as editor:
        for model in reversed(models):
            table = editor.quote_name(model._meta.db_table)
            editor.execute(f"DROP TABLE IF EXISTS {table}{cascade}")
        for model in models:
            editor.create_model(model)
