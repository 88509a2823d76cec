"""Every ```python block of docs/reliability.md runs, each in its own namespace."""

from __future__ import annotations

import pytest

from tests.docs_examples import blocks, run

PAGE = "reliability.md"
BLOCKS = blocks(PAGE, "python")


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_reliability_page_example_runs(index: int) -> None:
    run(PAGE, [BLOCKS[index]], {})
