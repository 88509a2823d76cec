"""Rows whose fixture object is byte for byte the one the last keep_edits import wrote are left
out before validation and staging: every outcome (rows, counters, conflicts, errors, row
states) is the one of an import that validates and stages every row."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.validators import MaxLengthValidator
from django.test import override_settings

from keel.fixtures import FixtureError, JsonFixtureUpsertCommand
from keel.fixtures.results import FixtureRow
from keel.fixtures.staging import StagingTable
from keel.models import FixtureRowState
from tests.testapp.models.fixtures import (
    FixtureArticle,
    FixtureCategory,
    FixtureEntry,
    FixtureTag,
)

pytestmark = pytest.mark.django_db(transaction=True)


class ImportEntries(JsonFixtureUpsertCommand):
    fixture_key = "entries"
    model_class = FixtureEntry
    lookup_field = "key"


class ImportEveryEntry(ImportEntries):
    """A row hook of its own: every row is validated and staged (the reference behaviour)."""

    def skip_row(self, row: FixtureRow) -> bool:
        return False


def entry(key: str, label: str = "Label", amount: str = "1.00") -> dict[str, Any]:
    return {"fields": {"key": key, "label": label, "amount": amount}}


ROWS = [entry("a"), entry("b", "Bee"), entry("c", "Sea", "3.00")]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")
    return path


Step = Callable[[Path, type[ImportEntries]], Any]


def imported(*args: str, **attributes: Any) -> Step:
    def step(path: Path, command_class: type[ImportEntries]) -> Any:
        command = command_class()
        command.fixture_path = path  # type: ignore[misc]
        for name, value in attributes.items():
            setattr(command, name, value)
        try:
            call_command(command, "--force", *args, stdout=io.StringIO(), stderr=io.StringIO())
        except FixtureError as exc:
            return ("refused", str(exc))
        result = command.import_result
        assert result is not None
        conflicts = [
            (c.row, c.key, c.field, c.editor_value, c.file_value) for c in result.conflicts
        ]
        return (result.created, result.updated, result.unchanged, result.deleted, conflicts)

    return step


def written(rows: list[dict[str, Any]]) -> Step:
    def step(path: Path, command_class: type[ImportEntries]) -> None:
        write(path, rows)

    return step


def edited(lookup: str, **values: Any) -> Step:
    def step(path: Path, command_class: type[ImportEntries]) -> None:
        FixtureEntry.objects.filter(key=lookup).update(**values)

    return step


def deleted(key: str) -> Step:
    def step(path: Path, command_class: type[ImportEntries]) -> None:
        FixtureEntry.objects.filter(key=key).delete()

    return step


def outcome(path: Path, command_class: type[ImportEntries], steps: list[Step]) -> list[Any]:
    FixtureEntry.objects.all().delete()
    FixtureRowState.objects.all().delete()
    write(path, ROWS)
    seen = [step(path, command_class) for step in steps]
    keys = dict(FixtureEntry.objects.values_list("pk", "key"))
    rows = sorted(FixtureEntry.objects.values_list("key", "label", "amount", "active"))
    states = sorted(
        (keys.get(int(pk), "(deleted)"), sorted(memory.items()))
        for pk, memory in FixtureRowState.objects.values_list("object_pk", "written")
    )
    return [seen, rows, states]


SCENARIOS: dict[str, list[Step]] = {
    "an editor changed a row": [imported(), edited("a", label="Edited"), imported()],
    "an editor changed a row, then set it back": [
        imported(),
        edited("a", label="Edited"),
        imported(),
        edited("a", label="Label"),
        imported(),
    ],
    "an editor deleted a row": [imported(), deleted("b"), imported()],
    "an editor changed the lookup value": [imported(), edited("a", key="a2"), imported()],
    "an editor changed a field the file does not give": [
        imported(),
        edited("c", active=False),
        imported(),
    ],
    "a conflict is reported at every import": [
        imported(),
        edited("a", label="Edited"),
        written([entry("a", "New"), *ROWS[1:]]),
        imported(),
        imported(),
        written(ROWS),
        imported(),
    ],
    "an overwrite import in between": [
        imported(),
        written([entry("a", "Other", "9.00"), *ROWS[1:]]),
        imported(edit_policy="overwrite"),
        written(ROWS),
        imported(),
    ],
    "--overwrite-edits": [imported(), edited("a", label="Edited"), imported("--overwrite-edits")],
    "create_only": [imported(), edited("a", label="Edited"), imported(edit_policy="create_only")],
    "overwrite": [imported(), edited("a", label="Edited"), imported(edit_policy="overwrite")],
    "prune": [
        imported(prune=True),
        edited("a", label="Edited"),
        written(ROWS[:2]),
        imported(prune=True),
    ],
    "a row moved and reformatted": [
        imported(),
        written([ROWS[2], ROWS[0], {"fields": {"label": "Bee", "key": "b", "amount": "1.00"}}]),
        imported(),
        imported(),
    ],
    "a new row repeats the key of an unchanged one": [
        imported(),
        written([*ROWS, entry("a", "Again")]),
        imported(),
    ],
    "an unchanged row repeats the key of a new one": [
        imported(),
        written([entry("a", "Again"), *ROWS]),
        imported(),
    ],
    "an unchanged row twice": [imported(), written([*ROWS, ROWS[0]]), imported()],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_leaving_unchanged_rows_out_changes_no_outcome(tmp_path: Path, name: str) -> None:
    path = tmp_path / "entries.json"
    steps = SCENARIOS[name]
    assert outcome(path, ImportEntries, steps) == outcome(path, ImportEveryEntry, steps)


def test_unchanged_rows_are_neither_validated_nor_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged: list[str] = []
    add = StagingTable.add

    def counting_add(self: StagingTable, file: int, rows: Any, digests: Any = ()) -> list[int]:
        staged.extend(row.key for row in rows)
        return add(self, file, rows, digests)

    monkeypatch.setattr(StagingTable, "add", counting_add)
    path = write(tmp_path / "entries.json", ROWS)
    assert imported()(path, ImportEntries)[:3] == (3, 0, 0)
    FixtureEntry.objects.filter(key="b").update(label="Edited")
    write(path, [entry("a", "New"), *ROWS[1:]])
    staged.clear()
    assert imported()(path, ImportEntries)[:3] == (0, 1, 2)
    assert staged == ["a"]
    assert FixtureEntry.objects.get(key="b").label == "Edited"
    # A row that kept an editor's value against the file is staged again (its conflict is
    # reported again); the others are left out.
    write(path, [entry("a", "New"), entry("b", "Bee 2"), ROWS[2]])
    assert imported()(path, ImportEntries)[4] == [(1, "key='b'", "label", "Edited", "Bee 2")]
    staged.clear()
    assert imported()(path, ImportEntries)[4] == [(1, "key='b'", "label", "Edited", "Bee 2")]
    assert staged == ["b"]
    assert FixtureRowState.objects.get(object_pk=FixtureEntry.objects.get(key="b").pk).digest == ""
    # Another policy, overwriting edits, pruning, another context: every row is staged.
    for step in (
        imported(edit_policy="overwrite"),
        imported(edit_policy="create_only"),
        imported("--overwrite-edits"),
        imported(prune=True),
        imported(fixture_version="2"),
        imported("--ignorenonexistent"),
    ):
        staged.clear()
        step(path, ImportEntries)
        assert staged == ["a", "b", "c"]
    with override_settings(TIME_ZONE="Europe/Paris"):
        staged.clear()
        imported()(path, ImportEntries)
        assert staged == ["a", "b", "c"]


class ImportCategories(JsonFixtureUpsertCommand):
    fixture_key = "categories"
    model_class = FixtureCategory
    lookup_field = "slug"


class ImportTags(JsonFixtureUpsertCommand):
    fixture_key = "tags"
    model_class = FixtureTag
    lookup_field = "name"


class ImportArticles(JsonFixtureUpsertCommand):
    fixture_key = "articles"
    model_class = FixtureArticle
    lookup_field = "key"
    natural_key_fields = {"tags": ("name",)}


def test_rows_of_a_model_with_relations_are_always_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their references are checked and resolved again at every import."""
    staged: list[str] = []
    add = StagingTable.add

    def counting_add(self: StagingTable, file: int, rows: Any, digests: Any = ()) -> list[int]:
        staged.extend(str(row.key) for row in rows)
        return add(self, file, rows, digests)

    monkeypatch.setattr(StagingTable, "add", counting_add)
    categories = write(tmp_path / "c.json", [{"fields": {"slug": "news"}}])
    tags = write(tmp_path / "t.json", [{"fields": {"name": "x"}}])
    articles = write(
        tmp_path / "a.json",
        [{"fields": {"key": "a", "category": ["news"], "tags": [["x"]]}}, {"fields": {"key": "b"}}],
    )
    for command_class, path in ((ImportCategories, categories), (ImportTags, tags)):
        command = command_class()
        command.fixture_path = path  # type: ignore[misc]
        call_command(command, stdout=io.StringIO())
    for _ in range(2):
        command = ImportArticles()
        command.fixture_path = articles  # type: ignore[misc]
        staged.clear()
        call_command(command, "--force", stdout=io.StringIO())
        assert staged == ["a", "b"]
    assert command.import_result is not None
    assert command.import_result.unchanged == 2


def test_a_changed_model_definition_stages_every_row_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "entries.json", ROWS)
    imported()(path, ImportEntries)
    staged: list[str] = []
    add = StagingTable.add

    def counting_add(self: StagingTable, file: int, rows: Any, digests: Any = ()) -> list[int]:
        staged.extend(row.key for row in rows)
        return add(self, file, rows, digests)

    monkeypatch.setattr(StagingTable, "add", counting_add)
    field = FixtureEntry._meta.get_field("label")
    monkeypatch.setattr(field, "validators", [MaxLengthValidator(3)])  # "Label" no longer fits
    assert imported()(path, ImportEntries)[0] == "refused"
    assert staged == []  # refused while validating, before the first batch was staged


class ImportEntriesByPk(ImportEntries):
    lookup_field = "pk"


class ImportEveryEntryByPk(ImportEntriesByPk):
    def skip_row(self, row: FixtureRow) -> bool:
        return False


@pytest.mark.parametrize("new_first", [False, True])
def test_a_unique_collision_with_a_row_left_out_names_its_row(
    tmp_path: Path, new_first: bool
) -> None:
    """Rows matched by pk, ``key`` unique too: a new row takes the key of a row left out."""
    rows = [{"pk": 1, **entry("a")}, {"pk": 2, **entry("b")}]
    new = {"pk": 3, **entry("a", "Other")}
    messages = []
    for command_class in (ImportEntriesByPk, ImportEveryEntryByPk):
        FixtureEntry.objects.all().delete()
        FixtureRowState.objects.all().delete()
        path = write(tmp_path / "entries.json", rows)
        assert imported()(path, command_class)[:3] == (2, 0, 0)
        write(path, [new, *rows] if new_first else [*rows, new])
        refused, message = imported()(path, command_class)
        assert refused == "refused"
        messages.append(message)
    assert messages[0] == messages[1]
    assert "'a' is also in row" in messages[0]
