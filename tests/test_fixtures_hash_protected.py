"""BaseHashProtectedCommand: what the hash covers, and what a custom import may return."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from keel.fixtures import BaseHashProtectedCommand, FixtureImportResult
from keel.models import FixtureState
from tests.testapp.management.commands.fixtures_import_entries import Command as ImportEntries
from tests.testapp.models.fixtures import FixtureEntry

pytestmark = pytest.mark.django_db(transaction=True)


class CountLines(BaseHashProtectedCommand):
    """A custom import: the project decides what importing means."""

    fixture_key = "testapp.lines"
    outcome: Any = True

    def handle_import(self, paths: list[Path], *, using: str, dry_run: bool) -> Any:
        FixtureEntry.objects.using(using).create(
            key=f"k{FixtureEntry.objects.count()}", label="l", amount=1
        )
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def run(command: BaseHashProtectedCommand, *args: str) -> FixtureImportResult | None:
    call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    return command.import_result


def lines_command(path: Path, outcome: Any = True) -> CountLines:
    command = CountLines()
    command.fixture_path = path  # type: ignore[misc]
    command.outcome = outcome
    return command


def test_a_custom_import_returning_true_stores_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("a\nb\n")
    assert run(lines_command(path)) == FixtureImportResult(status="imported")
    assert FixtureState.objects.filter(key="testapp.lines").exists()
    assert run(lines_command(path)) == FixtureImportResult(status="unchanged")
    assert FixtureEntry.objects.count() == 1


@pytest.mark.parametrize("outcome", [False, None, "done"])
def test_a_custom_import_returning_anything_else_fails_and_rolls_back(
    tmp_path: Path, outcome: Any
) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("a\n")
    with pytest.raises(CommandError, match="the import reported failure"):
        run(lines_command(path, outcome))
    assert FixtureEntry.objects.count() == 0
    assert not FixtureState.objects.exists()


def test_a_custom_import_that_raises_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("a\n")
    with pytest.raises(CommandError, match="bad line"):
        run(lines_command(path, CommandError("bad line")))
    assert FixtureEntry.objects.count() == 0
    assert not FixtureState.objects.exists()


def test_a_command_without_key_or_paths_says_so(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="fixture_key is not set"):
        run(BaseHashProtectedCommand())
    with pytest.raises(CommandError, match="sets neither fixture_path nor fixture_paths"):
        run(CountLines())


def test_the_hash_covers_lookup_field_model_and_fixture_version(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text(json.dumps([{"fields": {"key": "a", "label": "A", "amount": "1"}}]))

    def entries(**attributes: Any) -> ImportEntries:
        command = ImportEntries()
        command.fixture_path = path  # type: ignore[misc]
        for name, value in attributes.items():
            setattr(command, name, value)
        return command

    base = entries().compute_hash([path])
    assert entries().compute_hash([path]) == base
    assert entries(lookup_field="pk").compute_hash([path]) != base
    assert entries(model_path="testapp.FixtureCommentedEntry").compute_hash([path]) != base
    assert entries(fixture_version="2").compute_hash([path]) != base
    assert entries(prune=True).compute_hash([path]) != base
    run(entries())
    # A new version of the command imports again, once.
    assert run(entries(fixture_version="2")).status == "imported"  # type: ignore[union-attr]
    assert run(entries(fixture_version="2")).status == "unchanged"  # type: ignore[union-attr]
