"""The "Coming from" and "Testing" pages: every keel name they give exists, and every example
of the testing page runs, against the test project's models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from tests.docs_examples import DOCS, resolve, run_page, write_files
from tests.testapp.models import fixtures as fixture_models
from tests.testapp.models.site import SiteSettings


def test_every_keel_name_of_the_coming_from_page_exists() -> None:
    page = (DOCS / "coming-from.md").read_text()
    names = set(re.findall(r"`(keel(?:\.\w+)+)`", page))
    assert len(names) >= 25
    for name in sorted(names):
        assert resolve(name) is not None, name


@pytest.mark.django_db
def test_every_example_of_the_testing_page_runs(
    tmp_path: Path, settings: Any, keel_redis: Any
) -> None:
    settings.BASE_DIR = tmp_path
    redis_settings = dict(settings.KEEL)
    settings.KEEL = {k: v for k, v in settings.KEEL.items() if k != "REDIS_URL"}
    namespace: dict[str, Any] = {
        "Category": fixture_models.FixtureCategory,
        "REDIS_URL": redis_settings["REDIS_URL"],
    }
    write_files(
        "testing.md",
        tmp_path,
        lambda code: code.replace('"blog.category"', '"testapp.fixturecategory"'),
    )
    run_page("testing.md", namespace)
    tests = {name: f for name, f in namespace.items() if name.startswith("test_")}
    assert len(tests) == 4
    namespace["test_a_confirmation_link_works_once"]()
    namespace["test_a_link_expires_without_waiting"]()
    namespace["test_the_same_flow_in_redis"](settings)
    settings.KEEL = {k: v for k, v in settings.KEEL.items() if k != "REDIS_URL"}
    # Each test imports again: the stored hash rolls back with the test's transaction.
    for _ in range(2):
        with transaction.atomic():
            namespace["test_the_categories_are_imported"]()
            transaction.set_rollback(True)
    assert not fixture_models.FixtureCategory.objects.exists()


@pytest.mark.django_db
def test_clear_cache_shows_a_change_made_behind_keels_back() -> None:
    assert SiteSettings.load().site_name == "keel"
    table = connection.ops.quote_name(SiteSettings._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET site_name = %s", ["Harbour"])
    SiteSettings.clear_cache()
    assert SiteSettings.load().site_name == "Harbour"


def test_the_performance_page_speaks_to_users_and_names_each_command() -> None:
    page = (DOCS / "performance.md").read_text()
    assert not re.search(r"\bissues?\b", page, flags=re.IGNORECASE)
    sections = re.split(r"^## ", page, flags=re.MULTILINE)[1:]
    measured = [s for s in sections if "\n| contender" in s or "\n| size" in s]
    assert measured
    for section in measured:
        assert "```console\n$ " in section, section.splitlines()[0]
