"""Every example of docs/fixtures.md runs: its JSON blocks become the files, its Python blocks
run in order in one namespace, against the test project's models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keel.signals import fixture_imported
from tests.docs_examples import blocks, run, write_files
from tests.testapp.models import fixtures as models
from tests.testapp.models import fixtures_formats as formats

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


@pytest.mark.django_db(transaction=True)
def test_every_example_of_the_fixtures_page_runs(tmp_path: Path, settings: Any) -> None:
    settings.BASE_DIR = tmp_path
    files = write_files("fixtures.md", tmp_path)
    namespace: dict[str, Any] = dict(PROJECT_MODELS)
    python_blocks = blocks("fixtures.md", "python")
    assert files == 6 and len(python_blocks) >= 7
    try:
        run("fixtures.md", python_blocks, namespace)
    finally:
        fixture_imported.disconnect(dispatch_uid="docs-article-cache")
    assert namespace["refreshed"] == [("default", 1, 0)]
