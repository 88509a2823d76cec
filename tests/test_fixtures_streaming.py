"""Big files: memory does not grow with the file, and a file rewritten while it is imported
never commits a mix of old and new rows."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from keel.fixtures import FixtureError, FixtureImportResult, FixtureRow, JsonFixtureUpsertCommand
from keel.fixtures.apply import ANALYZE_MIN_ROWS
from keel.fixtures.state import get_stored_hash
from tests.testapp.models.fixtures import FixtureEntry

pytestmark = pytest.mark.django_db(transaction=True)


class ImportEntries(JsonFixtureUpsertCommand):
    fixture_key = "entries"
    model_class = FixtureEntry
    lookup_field = "key"


def entries(count: int, label: str = "Entry") -> list[dict[str, Any]]:
    return [
        {"fields": {"key": f"e-{i:07d}", "label": f"{label} {i}", "amount": f"{i}.50"}}
        for i in range(count)
    ]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


def run(command: JsonFixtureUpsertCommand, *args: str) -> FixtureImportResult:
    call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert command.import_result is not None
    return command.import_result


def test_a_file_rewritten_during_the_import_commits_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", entries(4000))
    replacement = json.dumps(entries(4000, label="Other"), indent=1).encode()

    class RewritingImport(ImportEntries):
        def skip_row(self, row: FixtureRow) -> bool:
            if row.index == 10:
                # A deploy tool rewrites the file in place while the import reads it: the
                # rows past the reader's first chunk come from the new content.
                with path.open("r+b") as stream:
                    stream.write(replacement)
                    stream.truncate()
            return False

    command = RewritingImport()
    command.fixture_path = path  # type: ignore[misc]
    with pytest.raises(FixtureError, match="the file changed while it was being imported"):
        run(command)
    assert not FixtureEntry.objects.exists()
    assert get_stored_hash("entries", "default") is None
    # The new content imports whole on the next run.
    command = ImportEntries()
    command.fixture_path = path  # type: ignore[misc]
    assert run(command).created == 4000
    assert FixtureEntry.objects.filter(label__startswith="Other").count() == 4000


def peak_memory(path: Path) -> int:
    command = ImportEntries()
    command.fixture_path = path  # type: ignore[misc]
    FixtureEntry.objects.all().delete()
    tracemalloc.start()
    try:
        run(command, "--force")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    small = peak_memory(write(tmp_path / "small.json", entries(5_000)))
    large = peak_memory(write(tmp_path / "large.json", entries(40_000)))
    # Eight times the rows: the peak stays within a fixed margin (a batch of rows, the
    # reader's buffer), instead of growing eightfold with what is kept per row.
    assert FixtureEntry.objects.count() == 40_000
    assert large < small + (3 << 20), (small, large)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plans by statistics")
def test_a_big_import_refreshes_the_planner_statistics(tmp_path: Path) -> None:
    command = ImportEntries()
    command.fixture_path = write(tmp_path / "e.json", entries(ANALYZE_MIN_ROWS))  # type: ignore[misc]
    run(command)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE relname = %s", [FixtureEntry._meta.db_table]
        )
        (rows,) = cursor.fetchone()
    # A table never analysed has reltuples -1: its plans guess, and may scan it whole.
    assert rows == ANALYZE_MIN_ROWS
