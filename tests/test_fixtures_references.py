"""Rows of one import refer to each other: a tree through a self foreign key, by natural key or
by id, parents before or after their children, cycles through nullable keys."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from keel.fixtures import FixtureError, FixtureImportResult, JsonFixtureUpsertCommand
from tests.testapp.models.fixtures import FixtureBook

pytestmark = pytest.mark.django_db(transaction=True)


class ImportBooks(JsonFixtureUpsertCommand):
    fixture_key = "books"
    model_class = FixtureBook
    lookup_field = "key"


def book(key: str, parent: Any = None, pk: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": "testapp.fixturebook",
        "fields": {"key": key, "title": key, "parent": parent},
    }
    if pk is not None:
        row["pk"] = pk
    return row


def run(
    path: Path, rows: list[dict[str, Any]], *args: str, **attributes: Any
) -> FixtureImportResult:
    path.write_text(json.dumps(rows), encoding="utf-8")
    command = ImportBooks()
    command.fixture_path = path  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(command, name, value)
    call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert command.import_result is not None
    return command.import_result


def tree() -> dict[str, str | None]:
    return {
        book.key: book.parent.key if book.parent else None
        for book in FixtureBook.objects.select_related("parent")
    }


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
@pytest.mark.parametrize("order", ["parents-first", "children-first"])
def test_a_tree_by_natural_key_in_any_order(tmp_path: Path, order: str, batch_size: int) -> None:
    rows = [book("root"), book("a", ["root"]), book("a1", ["a"]), book("b", ["root"])]
    if order == "children-first":
        rows.reverse()
    result = run(tmp_path / "b.json", rows, batch_size=batch_size)
    assert result.created == 4
    assert tree() == {"root": None, "a": "root", "a1": "a", "b": "root"}
    again = run(tmp_path / "b.json", rows, "--force", batch_size=batch_size)
    assert (again.updated, again.unchanged) == (0, 4)


def test_a_tree_by_id_in_any_order(tmp_path: Path) -> None:
    rows = [book("a1", 2, pk=3), book("a", 1, pk=2), book("root", pk=1)]
    assert run(tmp_path / "b.json", rows).created == 3
    assert tree() == {"root": None, "a": "root", "a1": "a"}


def test_a_self_reference_and_a_cycle_through_nullable_keys(tmp_path: Path) -> None:
    rows = [book("self", ["self"]), book("x", ["y"]), book("y", ["x"])]
    assert run(tmp_path / "b.json", rows).created == 3
    assert tree() == {"self": "self", "x": "y", "y": "x"}


def test_moving_a_stored_row_under_a_new_one_counts_as_an_update(tmp_path: Path) -> None:
    run(tmp_path / "b.json", [book("root"), book("a")])
    result = run(tmp_path / "b.json", [book("root"), book("a", ["new"]), book("new", ["root"])])
    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    assert tree() == {"root": None, "a": "new", "new": "root"}


def test_a_reference_to_no_row_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(
        FixtureError,
        match=r"row 1, field 'parent': no testapp.FixtureBook with natural key \['missing'\]",
    ):
        run(tmp_path / "b.json", [book("root"), book("a", ["missing"])])
    with pytest.raises(
        FixtureError, match=r"row 0, field 'parent': no testapp.FixtureBook with id 99"
    ):
        run(tmp_path / "b.json", [book("a", 99)])
    assert not FixtureBook.objects.exists()
