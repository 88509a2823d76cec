"""Every example of docs/mixins-utilities.md runs, in order, on the database of the run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models
from django.db.models.signals import class_prepared

DOC = Path(__file__).resolve().parent.parent / "docs" / "mixins-utilities.md"
# Models defined by the examples belong to the test app (their module is inside it).
MODULE = "tests.testapp.docs_mixins_utilities"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of every ```python block."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        line = text.count("\n", 0, match.start()) + 2
        blocks.append((line, match.group(1)))
    return blocks


@pytest.fixture
def example_models() -> Iterator[list[type[models.Model]]]:
    """Create the table of each model an example defines, as soon as it is defined."""
    created: list[type[models.Model]] = []

    def create_table(sender: type[models.Model], **kwargs: Any) -> None:
        if sender.__module__ == MODULE and not sender._meta.abstract:
            with connection.schema_editor() as editor:
                editor.create_model(sender)
            created.append(sender)

    class_prepared.connect(create_table)
    try:
        yield created
    finally:
        class_prepared.disconnect(create_table)
        with connection.schema_editor() as editor:
            for model in reversed(created):
                editor.delete_model(model)
        for model in created:
            apps.all_models[model._meta.app_label].pop(model._meta.model_name, None)
        apps.clear_cache()


def test_the_page_has_an_example_per_mixin() -> None:
    text = DOC.read_text()
    code = "\n".join(block for _, block in python_blocks(text))
    for name in [
        "BetterUniquenessErrorsMixin",
        "ValidationErrorsMixin",
        "ValidateOnSaveMixin",
        "FasterValidateOnSaveMixin",
        "PublicMetaMixin",
        "RelatedModelMixin",
        "ReloadMixin",
        "SaveInstanceFilesMixin",
    ]:
        assert f"## {name}" in text
        assert name in code


@pytest.mark.django_db(transaction=True)
def test_every_example_runs(
    example_models: list[type[models.Model]], settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    namespace: dict[str, Any] = {"__name__": MODULE}
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 10
    for line, code in blocks:
        # Padding keeps the line numbers of tracebacks those of the Markdown file.
        exec(compile("\n" * (line - 1) + code, str(DOC), "exec"), namespace)
    assert {m.__name__ for m in example_models} >= {"Coupon", "Membership", "Upload"}
