"""Every example of docs/mixins-utilities.md runs, in order, on the database of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import models

from tests.docs_examples import DOCS, blocks, example_tables, run

PAGE = "mixins-utilities.md"
# Models defined by the examples belong to the test app (their module is inside it).
MODULE = "tests.testapp.docs_mixins_utilities"


@pytest.fixture
def example_models() -> Iterator[list[type[models.Model]]]:
    """Create the table of each model an example defines, as soon as it is defined."""
    with example_tables(MODULE) as created:
        yield created


def test_the_page_has_an_example_per_mixin() -> None:
    text = (DOCS / PAGE).read_text()
    code = "\n".join(block.code for block in blocks(PAGE, "python"))
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
    examples = blocks(PAGE, "python")
    assert len(examples) >= 10
    run(PAGE, examples, namespace)
    assert {m.__name__ for m in example_models} >= {"Coupon", "Membership", "Upload"}
