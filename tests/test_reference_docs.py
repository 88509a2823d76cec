"""The example of every API reference page runs, against the test project's models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import override_settings

from tests.docs_examples import blocks, run_page
from tests.testapp.models import fixtures as fixture_models
from tests.testapp.models import mixins_core
from tests.testapp.models import site as site_models

PAGES = [
    "reference/index.md",
    "reference/configuration.md",
    "reference/fixtures.md",
    "reference/mixins.md",
    "reference/site.md",
    "reference/tokens.md",
]


def test_every_reference_page_has_an_example() -> None:
    for page in PAGES:
        assert blocks(page, "python"), page


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.django_db(transaction=True)
def test_the_reference_example_runs(page: str, tmp_path: Path, keel_redis: redis.Redis) -> None:
    namespace: dict[str, Any] = {
        "__name__": "docs_reference",
        "tmp_path": tmp_path,
        "override_settings": override_settings,
        "Category": fixture_models.FixtureCategory,
        "SiteSettings": site_models.SiteSettings,
        "StaticContent": site_models.StaticContent,
        "UserProfile": site_models.UserProfile,
        "Task": mixins_core.Task,
    }
    run_page(page, namespace)
