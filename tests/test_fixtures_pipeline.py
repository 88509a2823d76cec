"""The import pipeline runs one way: plan → read → validate → stage → apply → publish.

A step may use what the steps before it produce (their data types), never call into a step
after it: `docs/architecture.md` promises it, and this test fails when a step's module imports
a later step's.
"""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

#: The steps of an import, in order, by module of keel.fixtures.
STEPS = ["plan", "reading", "validation", "staging", "apply", "publish"]


def imported_steps(source: str) -> set[str]:
    """The steps a module's source imports (``from keel.fixtures.<step> import …``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[:2] == ["keel", "fixtures"] and len(parts) > 2 and parts[2] in STEPS:
                found.add(parts[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[:2] == ["keel", "fixtures"] and len(parts) > 2 and parts[2] in STEPS:
                    found.add(parts[2])
    return found


def later_steps_imported(step: str, source: str) -> list[str]:
    later = STEPS[STEPS.index(step) + 1 :]
    return sorted(imported_steps(source) & set(later))


@pytest.mark.parametrize("step", STEPS)
def test_no_step_imports_a_later_one(step: str) -> None:
    source = (ROOT / "src" / "keel" / "fixtures" / f"{step}.py").read_text()
    assert later_steps_imported(step, source) == []


def test_a_step_that_imports_a_later_one_is_caught() -> None:
    source = "from keel.fixtures.apply import apply_rows\nimport keel.fixtures.publish\n"
    assert later_steps_imported("staging", source) == ["apply", "publish"]
    assert later_steps_imported("publish", "from keel.fixtures.plan import ModelPlan\n") == []
