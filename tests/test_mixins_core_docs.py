"""Every example of docs/mixins.md runs, in order, on the database of the run."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models
from django.db.models.signals import class_prepared

from keel.models import mixins

DOC = Path(__file__).resolve().parent.parent / "docs" / "mixins.md"
MODULE = "tests.testapp.docs_mixins"  # inside the test app: its label is "testapp"
DOCUMENTED = [
    "ChangeTrackingMixin",
    "AutoUpdateFieldsMixin",
    "AlwaysUpdateFieldsMixin",
    "TimestampedMixin",
    "CallFieldsPreSaveMixin",
    "AutoForceInsertMixin",
    "AutoRemovePKFromUpdateFieldsMixin",
    "UpdatePreconditionsMixin",
    "StateTransitionPreconditionMixin",
    "StateTransitionEventsMixin",
]


def _blocks(language: str) -> list[tuple[int, str]]:
    text = DOC.read_text()
    pattern = rf"^```{language}\n(.*?)^```"
    return [
        (text.count("\n", 0, m.start()) + 2, m.group(1))
        for m in re.finditer(pattern, text, re.DOTALL | re.MULTILINE)
    ]


@pytest.fixture
def doc_tables() -> Iterator[None]:
    """Each model an example defines gets its table as soon as its class is prepared."""
    created: list[type[models.Model]] = []

    def create(sender: type[models.Model], **kwargs: Any) -> None:
        if sender.__module__ == MODULE and not sender._meta.abstract:
            with connection.schema_editor() as editor:
                editor.create_model(sender)
            created.append(sender)

    class_prepared.connect(create)
    try:
        yield
    finally:
        class_prepared.disconnect(create)
        with connection.schema_editor() as editor:
            for model in reversed(created):
                editor.delete_model(model)
        for model in created:
            apps.all_models[model._meta.app_label].pop(model._meta.model_name, None)
        apps.clear_cache()


def test_every_core_mixin_has_a_section_with_an_example() -> None:
    text = DOC.read_text()
    code = "\n".join(block for _, block in _blocks("python"))
    for name in DOCUMENTED:
        assert f"\n## {name}\n" in text
        assert name in code
        assert name in mixins.__all__


@pytest.mark.django_db(transaction=True)
def test_every_example_runs_and_the_mermaid_shown_is_the_one_printed(doc_tables: None) -> None:
    namespace: dict[str, Any] = {"__name__": MODULE}
    output = io.StringIO()
    blocks = _blocks("python")
    assert len(blocks) >= 12
    with contextlib.redirect_stdout(output):
        for line, code in blocks:
            # Padding keeps tracebacks on the Markdown file's line numbers.
            exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), namespace)
    ((_, mermaid),) = _blocks("mermaid")
    assert output.getvalue().strip() == mermaid.strip()
