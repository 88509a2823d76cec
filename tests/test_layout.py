"""The tests mirror ``src/keel``: a reader finds the tests of a module beside its path.

The rule: ``tests/<path>/test_<name>.py`` tests ``src/keel/<path>/<module>.py`` (or the
folder ``src/keel/<path>/<module>/``), where ``<name>`` is ``<module>`` itself or
``<module>_<behaviour>`` (``tests/site/test_cache_coherence.py`` tests ``keel/site/cache.py``).
Each folder of tests is a package, so that its modules import as ``tests.<path>.<module>``.
Tests that belong to no single module are allowed by ``ALLOWED`` below, each with its reason.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from tests.conftest import ROOT

TESTS = ROOT / "tests"
SOURCE = ROOT / "src" / "keel"

#: Test modules and folders that test no single module, and why (patterns of paths under
#: ``tests/``).
ALLOWED = {
    "browser/*": "the example site and the admin driven in a real browser",
    "test_*docs*.py": "the documentation's pages and examples, checked page by page",
    "test_example.py": "the example project, run as a user runs it",
    "test_package.py": "the distribution: wheel, sdist and README",
    "test_reliability_*.py": "faults, topologies and processes across the whole library",
    "test_layout.py": "this rule",
    "test_public_surface.py": "every module's public names, against the docs",
    "test_bench.py": "the benchmark harness, which lives in bench/, outside src",
}


def module_under_test(test: Path) -> Path | None:
    """The source module or package ``test`` (a path under ``tests/``) tests, or ``None``."""
    folder = SOURCE.joinpath(*test.parent.parts)
    name = test.stem.removeprefix("test_")
    if not folder.is_dir() or not test.name.startswith("test_"):
        return None
    for candidate in sorted(folder.iterdir(), key=lambda p: -len(p.stem)):
        module = candidate.stem if candidate.suffix == ".py" else candidate.name
        if candidate.suffix != ".py" and not candidate.is_dir():
            continue
        if module.startswith("_"):
            continue
        if name == module or name.startswith(module + "_"):
            return candidate
    return None


def allowed(test: Path) -> bool:
    return any(fnmatch.fnmatch(test.as_posix(), pattern) for pattern in ALLOWED)


def every_test_module() -> list[Path]:
    return sorted(p.relative_to(TESTS) for p in TESTS.rglob("test_*.py"))


def test_every_test_module_sits_beside_the_source_module_it_tests() -> None:
    misplaced = [
        str(test)
        for test in every_test_module()
        if not allowed(test) and module_under_test(test) is None
    ]
    assert misplaced == [], (
        "Name each test module tests/<path>/test_<module>[_<behaviour>].py after the module "
        "src/keel/<path>/<module>.py it tests, or add it to ALLOWED with its reason."
    )


def test_every_folder_of_tests_is_a_package() -> None:
    folders = {TESTS / test.parent for test in every_test_module()}
    assert sorted(str(f) for f in folders if not (f / "__init__.py").exists()) == []


@pytest.mark.parametrize(
    ("test", "module"),
    [
        ("site/test_cache_coherence.py", "site/cache.py"),
        ("site/test_cache.py", "site/cache.py"),
        ("models/mixins/test_states_preset_pk.py", "models/mixins/states.py"),
        ("fixtures/test_commands_drift.py", "fixtures/commands"),
        ("test_clock.py", "clock.py"),
        ("test_site_cache.py", "site"),
        ("site/test_cachet.py", None),
        ("test_cache.py", None),
        ("tokens/test_cache.py", None),
        ("nowhere/test_cache.py", None),
        ("site/test__private.py", None),
    ],
)
def test_the_rule_names_the_module_a_test_tests(test: str, module: str | None) -> None:
    found = module_under_test(Path(test))
    assert (found.relative_to(SOURCE).as_posix() if found else None) == module
