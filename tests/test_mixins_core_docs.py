"""Every example of docs/mixins.md runs, in order, on the database of the run."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest

from keel.models import mixins
from tests.docs_examples import DOCS, blocks, example_tables, run

PAGE = "mixins.md"
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


@pytest.fixture
def doc_tables() -> Iterator[None]:
    """Each model an example defines gets its table as soon as its class is prepared."""
    with example_tables(MODULE):
        yield


def test_every_core_mixin_has_a_section_with_an_example() -> None:
    text = (DOCS / PAGE).read_text()
    code = "\n".join(block.code for block in blocks(PAGE, "python"))
    for name in DOCUMENTED:
        assert f"\n## {name}\n" in text
        assert name in code
        assert name in mixins.__all__


@pytest.mark.django_db(transaction=True)
def test_every_example_runs_and_the_mermaid_shown_is_the_one_printed(doc_tables: None) -> None:
    namespace: dict[str, Any] = {"__name__": MODULE}
    output = io.StringIO()
    examples = blocks(PAGE, "python")
    assert len(examples) >= 12
    with contextlib.redirect_stdout(output):
        run(PAGE, examples, namespace)
    (mermaid,) = blocks(PAGE, "mermaid")
    assert output.getvalue().strip() == mermaid.code.strip()
