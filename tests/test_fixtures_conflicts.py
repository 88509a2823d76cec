"""Conflicts the database sees: keys it considers equal, unique constraints other than the
lookup, primary keys. Each is a FixtureError naming both rows, and nothing is written."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from keel.fixtures import FixtureError, FixtureImportResult, JsonFixtureUpsertCommand
from tests.testapp.models.fixtures import FixtureBook

pytestmark = pytest.mark.django_db(transaction=True)

#: MySQL/MariaDB compare text with the column's collation (here utf8mb4_unicode_ci: case and
#: accents ignored); PostgreSQL and SQLite compare it byte for byte.
FOLDS = connection.vendor == "mysql"


class ImportBooks(JsonFixtureUpsertCommand):
    fixture_key = "books"
    model_class = FixtureBook
    lookup_field = "key"


def book(key: str, title: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"model": "testapp.fixturebook", "fields": {"key": key, "title": title or key, **fields}}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def run(path: Path, *args: str, **attributes: Any) -> FixtureImportResult:
    command = ImportBooks()
    command.fixture_path = path  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(command, name, value)
    call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert command.import_result is not None
    return command.import_result


def stored() -> dict[str, str]:
    return dict(FixtureBook.objects.values_list("key", "title"))


def test_a_new_row_taking_another_rows_unique_value_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", [book("a", "Alpha"), book("b", "Beta")])
    run(path)
    # "c" is new, but its title belongs to "a": an upsert on any unique key would rename "a".
    write(path, [book("b", "Beta"), book("c", "Alpha")])
    with pytest.raises(FixtureError) as caught:
        run(path)
    message = str(caught.value)
    assert "row 1, field 'title'" in message
    assert "'Alpha' belongs to the existing row with key='a'" in message
    assert stored() == {"a": "Alpha", "b": "Beta"}
    # With "a" in the file too, both rows are the file's.
    write(path, [book("a", "Alpha"), book("b", "Beta"), book("c", "Alpha")])
    with pytest.raises(FixtureError, match=r"row 2, field 'title': title 'Alpha' is also in row 0"):
        run(path)
    assert stored() == {"a": "Alpha", "b": "Beta"}


def test_two_rows_of_a_file_with_one_unique_value_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", [book("a", "Same"), book("b", "Other"), book("c", "Same")])
    with pytest.raises(FixtureError, match=r"row 2, field 'title': title 'Same' is also in row 0"):
        run(path)
    assert stored() == {}


def test_unique_values_may_move_between_rows_of_one_import(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", [book("a", "Alpha"), book("b", "Beta")])
    run(path)
    # "a" gives up its title, which "c" takes: the final state has each title once.
    write(path, [book("a", "Gamma"), book("b", "Beta"), book("c", "Alpha")])
    result = run(path)
    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    assert stored() == {"a": "Gamma", "b": "Beta", "c": "Alpha"}


def test_a_unique_value_of_a_pruned_row_is_free(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", [book("a", "Alpha")])
    run(path)
    write(path, [book("c", "Alpha")])
    result = run(path, prune=True)
    assert (result.created, result.deleted) == (1, 1)
    assert stored() == {"c": "Alpha"}


def test_keys_the_database_considers_equal_are_one_key(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", [book("cafe", "One"), book("café", "Two")])
    if not FOLDS:
        result = run(path)
        assert result.created == 2
        assert stored() == {"cafe": "One", "café": "Two"}
        return
    with pytest.raises(
        FixtureError, match=r"row 1, field 'key': duplicate lookup value 'café' \(first in row 0\)"
    ):
        run(path)
    assert stored() == {}


def test_case_variants_of_a_key_are_one_key_where_the_collation_folds_case(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "b.json", [book("Alpha", "One"), book("alpha", "Two")])
    if not FOLDS:
        assert run(path).created == 2
        return
    with pytest.raises(FixtureError, match=r"row 1, field 'key': duplicate lookup value"):
        run(path)
    assert stored() == {}


def test_a_key_matched_through_the_collation_settles(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", [book("cafe", "One")])
    run(path)
    write(path, [book("café", "One")])
    first = run(path, prune=True)
    again = run(path, "--force", prune=True)
    if FOLDS:
        # The stored row is the fixture's: its key takes the fixture's spelling, once.
        assert (first.created, first.updated, first.deleted) == (0, 1, 0)
    else:
        assert (first.created, first.updated, first.deleted) == (1, 0, 1)
    assert stored() == {"café": "One"}
    assert (again.created, again.updated, again.unchanged, again.deleted) == (0, 0, 1, 0)


def test_a_title_change_of_case_or_accent_is_written(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", [book("a", "cafe")])
    run(path)
    write(path, [book("a", "Café")])
    assert run(path).updated == 1
    assert stored() == {"a": "Café"}
    assert run(path, "--force").unchanged == 1


def test_random_imports_never_lose_a_row_silently(tmp_path: Path) -> None:
    """Against a model of what the table must hold, on keys and titles drawn from a few
    values that collide under case and accents: every import either does exactly what the
    fixture says or is refused and changes nothing."""
    rng = random.Random(14)
    keys = ["a", "A", "b", "é", "e"]
    titles = ["t", "T", "u", "ü", "v"]
    path = tmp_path / "b.json"
    for _ in range(40):
        rows = [book(rng.choice(keys), rng.choice(titles)) for _ in range(rng.randint(1, 4))]
        before = stored()
        write(path, rows)
        try:
            result = run(path, "--force", prune=True)
        except FixtureError:
            assert stored() == before
            continue
        after = stored()
        assert len(after) == len(rows)
        assert sorted(after.values()) == sorted(row["fields"]["title"] for row in rows)
        assert result.created + result.updated + result.unchanged == len(rows)


def test_a_rule_only_the_database_knows_is_a_fixture_error(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", [book("a", "Alpha"), book("b", "Beta", weight=-1)])
    with pytest.raises(FixtureError, match="the database refused the import"):
        run(path)
    assert stored() == {}
