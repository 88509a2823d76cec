"""The one harness that runs the code blocks of the documentation pages.

A page's fenced blocks are read in order (`blocks`); JSON blocks with a ``title="path"`` become
files (`write_files`); Python blocks run in order in one namespace, each compiled under the
page's file name and padded so that a traceback points at the Markdown line (`run`). Models an
example defines get their table when their class is prepared (`example_tables`).

Which pages the tests execute is listed here (`EXECUTED_PAGES`): the public-surface test reads
the examples of those pages to check that every public name is used by an example that runs.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import connection, models
from django.db.models.signals import class_prepared

DOCS = Path(__file__).resolve().parent.parent / "docs"
_FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_TITLE = re.compile(r'title="([^"]+)"')
# Pages import the reader's own models from ``myproject.models``; the tests provide them.
_PROJECT_IMPORT = re.compile(r"^from myproject\.models import .*$", re.MULTILINE)

#: Pages whose ``python`` blocks are executed by a test through `run`.
EXECUTED_PAGES = (
    "fixtures.md",
    "mixins.md",
    "mixins-utilities.md",
    "reference/configuration.md",
    "reference/fixtures.md",
    "reference/index.md",
    "reference/mixins.md",
    "reference/site.md",
    "reference/tokens.md",
    "reliability.md",
    "site.md",
    "testing.md",
    "tokens.md",
)


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, the rest of the fence line, its code and first line."""

    language: str
    info: str
    code: str
    line: int

    @property
    def title(self) -> str | None:
        """The ``title="…"`` of the fence, if any."""
        found = _TITLE.search(self.info)
        return found.group(1) if found else None


def blocks(page: str, language: str | None = None) -> list[Block]:
    """The fenced blocks of ``docs/<page>`` (of one ``language`` if given), in page order."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = [
        Block(
            language=match.group(1),
            info=match.group(2).strip(),
            code=textwrap.dedent(match.group(3)),
            line=text.count("\n", 0, match.start()) + 2,
        )
        for match in _FENCE.finditer(text)
    ]
    return [block for block in found if language is None or block.language == language]


def write_files(page: str, root: Path, transform: Callable[[str], str] = lambda code: code) -> int:
    """Write every JSON block of ``page`` to ``root / title``; the number of files written."""
    written = 0
    for block in blocks(page, "json"):
        assert block.title, f"every JSON block of {page} is a file with a title"
        target = root / block.title
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(transform(block.code), encoding="utf-8")
        written += 1
    return written


def run(page: str, examples: Iterable[Block], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute ``examples`` of ``page`` in order in ``namespace`` and return it.

    Imports of ``myproject.models`` are dropped (the namespace provides those models).
    """
    filename = str(DOCS / page)
    for block in examples:
        code = _PROJECT_IMPORT.sub("", block.code)
        # Padding keeps tracebacks on the Markdown file's line numbers.
        exec(compile("\n" * (block.line - 1) + code, filename, "exec"), namespace)
    return namespace


def run_page(page: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute every ``python`` block of ``page`` in order in ``namespace``."""
    return run(page, blocks(page, "python"), namespace)


def resolve(dotted: str) -> object:
    """The object a dotted name (``keel.site.admin.SingletonModelAdmin``) names."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(dotted)


@contextmanager
def example_tables(module: str) -> Iterator[list[type[models.Model]]]:
    """Create the table of each concrete model an example defines in ``module`` as soon as
    its class is prepared; drop the tables and forget the models on exit."""
    created: list[type[models.Model]] = []

    def create(sender: type[models.Model], **kwargs: Any) -> None:
        if sender.__module__ == module and not sender._meta.abstract:
            with connection.schema_editor() as editor:
                editor.create_model(sender)
            created.append(sender)

    class_prepared.connect(create)
    try:
        yield created
    finally:
        class_prepared.disconnect(create)
        with connection.schema_editor() as editor:
            for model in reversed(created):
                editor.delete_model(model)
        for model in created:
            apps.all_models[model._meta.app_label].pop(model._meta.model_name, None)
        apps.clear_cache()
