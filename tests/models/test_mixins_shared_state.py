"""The save mixins share per-instance state through ``keel.models.mixins._shared`` only, and
each seed name has its canonical name beside it (the same object)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import keel.models.mixins
from keel.models import mixins
from keel.models.mixins import _shared
from keel.models.mixins.states import StateGraph, StateMachineMixin

PACKAGE = "keel.models.mixins"
MIXINS_DIR = Path(keel.models.mixins.__file__).parent
SHARED = f"{PACKAGE}._shared"
#: What the shared-state module offers: its public (no underscore) names.
SHARED_NAMES = frozenset(
    name
    for name, value in vars(_shared).items()
    if not name.startswith("_")
    and (isinstance(value, str) or getattr(value, "__module__", None) == SHARED)
)


def private_imports(source: str) -> list[str]:
    """Underscore names one mixin module imports from another mixin module (the shared-state
    module excepted), and any import of ``_shared``'s names that it does not export."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if not node.module.startswith(PACKAGE + "."):
            continue
        for alias in node.names:
            if node.module == SHARED:
                if alias.name not in SHARED_NAMES:
                    found.append(f"{node.module}.{alias.name}")
            elif alias.name.startswith("_"):
                found.append(f"{node.module}.{alias.name}")
    return found


def instance_keys(source: str) -> list[str]:
    """``"_keel_…"`` string constants: per-instance keys must be named in ``_shared``."""
    return [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("_keel_")
    ]


MODULES = sorted(p for p in MIXINS_DIR.glob("*.py") if p.name != "_shared.py")
#: A class-level cache (one graph per model class), not state of an instance.
CLASS_KEYS = {"_keel_state_graph"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_mixin_module_imports_another_ones_private_names(path: Path) -> None:
    assert private_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_per_instance_keys_are_named_in_the_shared_module_only(path: Path) -> None:
    assert set(instance_keys(path.read_text(encoding="utf-8"))) <= CLASS_KEYS


@pytest.mark.parametrize(
    "source",
    [
        "from keel.models.mixins.preconditions import _ACTIVE",
        "from keel.models.mixins.uniqueness import _UnsavedState",
        "from keel.models.mixins._shared import compat",
        "from keel.models.mixins._shared import models",
    ],
)
def test_the_import_check_catches_a_private_import(source: str) -> None:
    assert private_imports(source) != []


def test_the_key_check_catches_a_hidden_key() -> None:
    assert instance_keys('self.__dict__["_keel_hidden"] = 1') == ["_keel_hidden"]


def test_the_shared_module_offers_the_keys_and_helpers() -> None:
    assert {"PRECONDITIONS", "JOURNAL", "UnsavedState", "settle_tracking"} <= SHARED_NAMES
    assert "annotations" not in SHARED_NAMES and "compat" not in SHARED_NAMES


def test_every_shared_key_is_documented_in_the_contract() -> None:
    keys = sorted(name for name in SHARED_NAMES if name.isupper())
    assert keys
    doc = _shared.__doc__ or ""
    for name in keys:
        assert f"``{name}``" in doc
        assert getattr(_shared, name).startswith("_keel_")
    assert len({getattr(_shared, name) for name in keys}) == len(keys)


@pytest.mark.parametrize(
    ("seed", "canonical"),
    [
        (mixins.FasterValidateOnSaveMixin, mixins.ValidateOnSaveWithoutQueriesMixin),
        (StateMachineMixin.can_transit_to, StateMachineMixin.can_transition_to),
        (StateGraph.can_transit, StateGraph.can_transition),
    ],
)
def test_the_seed_name_and_the_canonical_name_are_the_same_object(
    seed: object, canonical: object
) -> None:
    assert seed is canonical


def test_both_names_are_exported() -> None:
    assert {"FasterValidateOnSaveMixin", "ValidateOnSaveWithoutQueriesMixin"} <= set(mixins.__all__)
