"""Every example of docs/fixtures.md runs: its JSON blocks become the files, its Python blocks
run in order in one namespace, against the test project's models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from keel.signals import fixture_imported
from tests.testapp.models import fixtures as models
from tests.testapp.models import fixtures_formats as formats

PAGE = Path(__file__).resolve().parent.parent / "docs" / "fixtures.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# The page imports the reader's models from ``myproject.models``; the test provides them.
PROJECT_MODELS = {
    "Article": models.FixtureArticle,
    "Category": models.FixtureCategory,
    "Content": models.FixtureContent,
    "Lesson": formats.FixtureLesson,
    "Topic": formats.FixtureTopic,
    "Shelf": formats.FixtureShelf,
    "SiteSettings": models.FixtureSiteConfig,
    "Volume": formats.FixtureVolume,
}


def blocks(language: str) -> list[tuple[str, str]]:
    return [
        (attributes, body)
        for lang, attributes, body in BLOCK.findall(PAGE.read_text(encoding="utf-8"))
        if lang == language
    ]


@pytest.mark.django_db(transaction=True)
def test_every_example_of_the_fixtures_page_runs(tmp_path: Path, settings: Any) -> None:
    settings.BASE_DIR = tmp_path
    files = 0
    for attributes, body in blocks("json"):
        title = re.search(r'title="([^"]+)"', attributes)
        assert title, "every JSON block of the page is a file with a title"
        target = tmp_path / title.group(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
        files += 1
    namespace: dict[str, Any] = dict(PROJECT_MODELS)
    python_blocks = blocks("python")
    assert files == 6 and len(python_blocks) >= 7
    try:
        for _, body in python_blocks:
            code = re.sub(r"^from myproject\.models import .*$", "", body, flags=re.MULTILINE)
            exec(compile(code, str(PAGE), "exec"), namespace)
    finally:
        fixture_imported.disconnect(dispatch_uid="docs-article-cache")
    assert namespace["refreshed"] == [("default", 1, 0)]
