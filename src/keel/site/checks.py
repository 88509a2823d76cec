"""System checks of keel's project state (registered by [`keel.checks`][keel.checks]).

- ``keel.E008``: a published field of a cached model cannot make the round trip through a
  document (``value_to_string`` then ``to_python``) with its type.
- ``keel.W003``: the key prefix is derived from a default database that does not tell this
  project apart (a relative or in-memory SQLite path, no name).
- ``keel.W004``: the key prefix is ``"keel"``, which every project used by default before.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.models)
def check_cached_fields(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``keel.E008`` for every published field of a cached model keel cannot publish."""
    from keel.site.codec import published_fields, unpublishable_reason
    from keel.site.registry import cached_models

    wanted = None if app_configs is None else {c.label for c in app_configs}
    messages: list[checks.CheckMessage] = []
    for model in cached_models():
        if wanted is not None and model._meta.app_label not in wanted:
            continue
        for field in published_fields(model):
            reason = unpublishable_reason(field)
            if reason is None:
                continue
            messages.append(
                checks.Error(
                    f"{model._meta.label}.{field.name} ({type(field).__name__}) cannot be "
                    f"published to keel's cache: {reason}.",
                    hint="Give the field a to_python() that rebuilds its value from "
                    "value_to_string(), or mark it secret=True so it is never published.",
                    obj=field,
                    id="keel.E008",
                )
            )
    return messages


def _weak_database_name() -> str | None:
    """Why the default database's identity does not tell this project apart, or ``None``."""
    default = settings.DATABASES.get("default", {})
    name = str(default.get("NAME") or "")
    options = default.get("OPTIONS") or {}
    # A PostgreSQL service or an option file (MySQL, MariaDB) may name the database instead.
    named_by_options = any(
        options.get(key) for key in ("service", "dbname", "db", "database", "read_default_file")
    )
    if not name and not named_by_options:
        return "the default database has no NAME"
    engine = str(default.get("ENGINE", ""))
    if engine.endswith("sqlite3") and (name == ":memory:" or "mode=memory" in name):
        return f"the default database is an in-memory SQLite database ({name!r})"
    if engine.endswith("sqlite3") and not os.path.isabs(name):
        return f"the default database is the relative SQLite path {name!r}"
    return None


@checks.register()
def check_key_prefix(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``keel.W003`` / ``keel.W004``: keys that another project could share."""
    from keel.conf import user_settings

    try:
        raw = user_settings()
    except Exception:  # keel.E001 reports it
        return []
    if not raw.get("REDIS_URL"):
        return []
    prefix = raw.get("KEY_PREFIX")
    if prefix == "keel":
        return [
            checks.Warning(
                "KEEL['KEY_PREFIX'] is 'keel', the prefix every project used by default "
                "before: projects sharing this Redis database read each other's site "
                "settings and tokens.",
                hint="Set KEEL['KEY_PREFIX'] to a name unique to this project, or remove it "
                "to derive one from the default database.",
                id="keel.W004",
            )
        ]
    if prefix is not None:
        return []
    weak = _weak_database_name()
    if weak is None:
        return []
    return [
        checks.Warning(
            f"KEEL['KEY_PREFIX'] is not set, so it is derived from the default database, but "
            f"{weak}: processes of this project may disagree on it, or another project may "
            "derive the same one.",
            hint="Set KEEL['KEY_PREFIX'] to a name unique to this project on this Redis database.",
            id="keel.W003",
        )
    ]
