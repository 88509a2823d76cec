"""keel's public surface: every name a module exports through ``__all__`` has a docs entry and
is used by a docs example that the tests run.

How the test decides:

- **Which modules.** Every module under ``src/keel``, imported. A module whose docstring says
  ``Internal:`` is not public and has no ``__all__``, except the few listed in `REEXPORT_ONLY`,
  where the tools need one (mypy's explicit re-export, ruff's unused-import rule) for keel's own
  imports; every other ``__all__`` is public.
- **A docs entry.** A name has one when the mkdocstrings directives of ``docs/**/*.md`` render
  its object (``::: keel.x`` renders the names of ``keel.x.__all__``, or its ``members:`` list
  when one is given; ``::: keel.x.Y`` renders ``Y``), compared by identity so that a name
  exported by its home module (``keel.tokens.manager``) is documented by its package's entry
  (``::: keel.tokens``); or when a heading of a guide page names it.
- **An executed example.** The ``python`` blocks of the pages in
  [`docs_examples.EXECUTED_PAGES`][tests.docs_examples.EXECUTED_PAGES], each run by a test through
  that harness; a public name is used when it appears as a word in their code.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import types
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import keel
from tests.docs_examples import DOCS, EXECUTED_PAGES, blocks, resolve

#: Internal modules that keep an ``__all__`` for the tools only (see the module docstring).
REEXPORT_ONLY = {
    "keel.compat": "Django internals (DeferredAttribute, ModelState, ...) re-exported to keel",
    "keel.site.cache": "the read path re-exports its parts to keel.site.base and the middleware",
}
_DIRECTIVE = re.compile(r"^::: *([\w.]+)[ \t]*\n((?:[ \t]+.*\n|[ \t]*\n)*)", re.MULTILINE)
_MEMBERS = re.compile(r"^\s+members:\s*\[([^\]]*)\]", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6} +(.*)$", re.MULTILINE)


def keel_modules() -> Iterator[types.ModuleType]:
    """keel and every module under it, imported."""
    yield keel
    for info in pkgutil.walk_packages(keel.__path__, "keel."):
        if ".migrations" in info.name:
            continue
        yield importlib.import_module(info.name)


def is_internal(module: types.ModuleType) -> bool:
    return "Internal:" in (module.__doc__ or "")


def exported(modules: Iterable[types.ModuleType]) -> dict[str, object]:
    """``"module.name"`` to its object, for every name of a public module's ``__all__``."""
    names: dict[str, object] = {}
    for module in modules:
        if is_internal(module):
            continue
        for name in getattr(module, "__all__", ()):
            names[f"{module.__name__}.{name}"] = getattr(module, name)
    return names


def rendered(markdown: str) -> list[object]:
    """The objects the mkdocstrings directives of ``markdown`` render."""
    objects: list[object] = []
    for match in _DIRECTIVE.finditer(markdown):
        target = resolve(match.group(1))
        members = _MEMBERS.search(match.group(2))
        objects.append(target)
        if isinstance(target, types.ModuleType):
            names = (
                [n.strip() for n in members.group(1).split(",") if n.strip()]
                if members
                else list(getattr(target, "__all__", ()))
            )
            objects.extend(getattr(target, name) for name in names)
    return objects


def headed(markdown: str) -> set[str]:
    """The words of the headings of ``markdown``."""
    return {word for heading in _HEADING.findall(markdown) for word in re.findall(r"\w+", heading)}


def without_entry(names: dict[str, object], pages: Iterable[str]) -> list[str]:
    """The names of ``names`` that no page of ``pages`` renders or heads."""
    objects: list[object] = []
    words: set[str] = set()
    for markdown in pages:
        objects.extend(rendered(markdown))
        words |= headed(markdown)
    ids = {id(obj) for obj in objects}
    return sorted(
        dotted
        for dotted, obj in names.items()
        if id(obj) not in ids and dotted.rsplit(".", 1)[1] not in words
    )


def without_example(names: Iterable[str], code: str) -> list[str]:
    """The dotted ``names`` whose last part is never a word of ``code``."""
    words = set(re.findall(r"\w+", code))
    return sorted(dotted for dotted in names if dotted.rsplit(".", 1)[1] not in words)


def docs_pages() -> list[str]:
    return [page.read_text(encoding="utf-8") for page in sorted(DOCS.rglob("*.md"))]


def executed_code() -> str:
    return "\n".join(block.code for page in EXECUTED_PAGES for block in blocks(page, "python"))


@pytest.fixture(scope="module")
def surface() -> dict[str, object]:
    return exported(keel_modules())


def test_the_surface_is_the_documented_packages(surface: dict[str, object]) -> None:
    assert "keel.tokens.JsonActionTokenManager" in surface
    assert "keel.models.mixins.UpdatePreconditionsMixin" in surface
    assert not any(name.startswith("keel.fixtures.staging.") for name in surface)
    assert len(surface) > 100


def test_internal_modules_have_no_all_but_the_listed_re_exports() -> None:
    with_all = {
        module.__name__
        for module in keel_modules()
        if is_internal(module) and hasattr(module, "__all__")
    }
    assert with_all == set(REEXPORT_ONLY)


def test_every_public_name_has_a_docs_entry(surface: dict[str, object]) -> None:
    assert without_entry(surface, docs_pages()) == []


def test_every_public_name_is_used_by_an_executed_example(surface: dict[str, object]) -> None:
    assert without_example(surface, executed_code()) == []


def test_every_executed_page_is_run_by_a_test() -> None:
    sources = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*docs*.py"))
    for page in EXECUTED_PAGES:
        assert f'"{page}"' in sources, page


def test_an_undocumented_name_fails_both_checks() -> None:
    fake = types.ModuleType("keel.fake", "A public module of the test.")
    setattr(fake, "NoSuchThing", object())  # noqa: B010
    setattr(fake, "__all__", ["NoSuchThing"])  # noqa: B010
    sys.modules["keel.fake"] = fake
    try:
        names = exported([fake])
        assert without_entry(names, ["# A page\n\n::: keel.conf\n"]) == ["keel.fake.NoSuchThing"]
        assert without_entry(names, ["# A page\n\n::: keel.fake\n"]) == []
        assert without_entry(names, ["# A page\n\n## NoSuchThing\n"]) == []
        assert without_example(names, "x = 1") == ["keel.fake.NoSuchThing"]
        assert without_example(names, "from keel.fake import NoSuchThing") == []
        fake.__doc__ = "Internal: of the test."
        assert exported([fake]) == {}
    finally:
        del sys.modules["keel.fake"]
