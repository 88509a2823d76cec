"""BaseUpdateAllContentCommand and the keel_fixtures listing."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from keel.fixtures import BaseUpdateAllContentCommand
from keel.models import FixtureState
from tests.testapp.management.commands.fixtures_update_all import Command as UpdateAll
from tests.testapp.models.fixtures import FixtureArticle, FixtureSiteConfig

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other"])


def run_all(command: BaseUpdateAllContentCommand, *args: str, **options: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_everything_imports_and_subcommand_output_goes_through_stdout() -> None:
    out, _ = run_all(UpdateAll())
    assert "testapp.articles: 3 created" in out
    assert "search index rebuilt" in out
    assert "== import articles" in out
    assert "Summary" in out
    assert FixtureArticle.objects.count() == 3
    assert FixtureSiteConfig.objects.get().site_name == "Keel demo"


def test_force_reaches_only_the_subcommands_that_take_it() -> None:
    run_all(UpdateAll())
    out, _ = run_all(UpdateAll(), "--force")
    # The import commands ran again instead of skipping, and the command without --force ran.
    assert "unchanged, skipped" not in out
    assert "testapp.articles: 0 created, 0 updated, 3 unchanged" in out
    assert "search index rebuilt" in out
    out, _ = run_all(UpdateAll())
    assert out.count("unchanged, skipped") == 4


def test_a_failure_runs_the_rest_and_fails_the_command(tmp_path: Path) -> None:
    class Broken(UpdateAll):
        commands_to_run = [
            "fixtures_import_categories",
            "no_such_command",
            "fixtures_rebuild_index",
        ]

    out = io.StringIO()
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 of 3 commands failed: no such command"):
        call_command(Broken(), stdout=out, stderr=err)
    assert "Unknown command: 'no_such_command'" in err.getvalue()
    assert "search index rebuilt" in out.getvalue()
    assert "FAILED" in out.getvalue()


def test_a_failing_import_is_rolled_back_and_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"model": "testapp.fixturesiteconfig", "fields": {"to_dict": "x"}}]))
    from tests.testapp.management.commands import fixtures_update_site_config

    original = fixtures_update_site_config.Command.fixture_path
    fixtures_update_site_config.Command.fixture_path = bad  # type: ignore[misc]
    try:
        with pytest.raises(CommandError, match="update site config"):
            run_all(UpdateAll())
    finally:
        fixtures_update_site_config.Command.fixture_path = original  # type: ignore[misc]
    assert FixtureArticle.objects.count() == 3
    assert not FixtureState.objects.filter(key="testapp.site_config").exists()


def test_hooks_run_around_each_subcommand() -> None:
    calls: list[str] = []

    class Hooked(UpdateAll):
        commands_to_run = ["fixtures_import_categories", "fixtures_rebuild_index"]

        def before_subcommand(self, name: str) -> None:
            calls.append(f"before {name}")

        def after_subcommand(self, name: str) -> None:
            calls.append(f"after {name}")

    run_all(Hooked())
    assert calls == [
        "before fixtures_import_categories",
        "after fixtures_import_categories",
        "before fixtures_rebuild_index",
        "after fixtures_rebuild_index",
    ]


def test_dry_run_sees_earlier_imports_then_rolls_everything_back() -> None:
    out, _ = run_all(UpdateAll(), "--dry-run")
    # Articles refer to categories imported just before them, in the same rolled-back run.
    assert "testapp.articles: 3 created" in out
    assert "search index rebuilt" not in out
    assert "not run (no --dry-run)" in out
    assert FixtureArticle.objects.count() == 0
    assert not FixtureState.objects.exists()


def test_database_is_passed_on() -> None:
    run_all(UpdateAll(), database="other")
    assert FixtureArticle.objects.using("other").count() == 3
    assert FixtureArticle.objects.count() == 0


def test_an_empty_list_only_warns() -> None:
    class Empty(BaseUpdateAllContentCommand):
        pass

    out, _ = run_all(Empty())
    assert "No commands to run" in out


def test_keel_fixtures_lists_stored_and_current_hashes(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("keel_fixtures", stdout=out)
    assert "fixtures_import_articles" in out.getvalue()
    assert "never imported" in out.getvalue()
    call_command("fixtures_import_categories", stdout=io.StringIO())
    out = io.StringIO()
    call_command("keel_fixtures", stdout=out)
    line = next(
        x for x in out.getvalue().splitlines() if x.startswith("fixtures_import_categories")
    )
    assert line.endswith("current")
    FixtureState.objects.filter(key="testapp.categories").update(content_hash="0" * 64)
    out = io.StringIO()
    with pytest.raises(CommandError, match="not current"):
        call_command("keel_fixtures", "--check", stdout=out)
    line = next(
        x for x in out.getvalue().splitlines() if x.startswith("fixtures_import_categories")
    )
    assert "000000000000" in line and line.endswith("stale")
