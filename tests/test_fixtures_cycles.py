"""Models of one file that refer to each other in a cycle through a nullable foreign key: the
key is set in a second pass, with exact counters, under every edit policy, as ``loaddata``
sets it."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from keel.fixtures import (
    BaseHashProtectedCommand,
    FixtureError,
    FixtureImportResult,
    JsonFixtureUpsertCommand,
)
from keel.fixtures.plan import plan_models
from keel.management.commands.keel_fixtures import Command as KeelFixtures
from tests.testapp.models.fixtures_formats import (
    FixtureEgg,
    FixtureHen,
    FixtureShelf,
    FixtureVolume,
)

pytestmark = pytest.mark.django_db(transaction=True)


class ImportLibrary(JsonFixtureUpsertCommand):
    fixture_key = "library"
    model_lookups = {FixtureShelf: "code", FixtureVolume: "code"}


def shelf(code: str, first: Any, pk: int | None = None, label: str = "") -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": "testapp.fixtureshelf",
        "fields": {"code": code, "label": label or code.upper(), "first_volume": first},
    }
    if pk is not None:
        row["pk"] = pk
    return row


def volume(code: str, on: Any, pk: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"model": "testapp.fixturevolume", "fields": {"code": code, "shelf": on}}
    if pk is not None:
        row["pk"] = pk
    return row


def by_natural_key() -> list[dict[str, Any]]:
    return [
        shelf("a", ["v1"]),
        shelf("b", ["v3"]),
        shelf("c", None),
        volume("v1", ["a"]),
        volume("v2", ["a"]),
        volume("v3", ["b"]),
    ]


def by_id() -> list[dict[str, Any]]:
    return [
        shelf("a", 11, pk=1),
        shelf("b", 13, pk=2),
        shelf("c", None, pk=3),
        volume("v1", 1, pk=11),
        volume("v2", 1, pk=12),
        volume("v3", 2, pk=13),
    ]


def snapshot(with_pks: bool) -> dict[str, Any]:
    shelves = {
        s.code: (
            s.pk if with_pks else None,
            s.label,
            s.first_volume.code if s.first_volume else None,
        )
        for s in FixtureShelf.objects.select_related("first_volume")
    }
    volumes = {
        v.code: (v.pk if with_pks else None, v.shelf.code if v.shelf else None)
        for v in FixtureVolume.objects.select_related("shelf")
    }
    return {"shelves": shelves, "volumes": volumes}


def clear() -> None:
    FixtureShelf.objects.update(first_volume=None)
    FixtureVolume.objects.all().delete()
    FixtureShelf.objects.all().delete()


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def run(path: Path, *args: str, **attributes: Any) -> tuple[FixtureImportResult, str]:
    command = ImportLibrary()
    command.fixture_path = path  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(command, name, value)
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    assert command.import_result is not None
    return command.import_result, out.getvalue()


def counters(result: FixtureImportResult) -> dict[str, tuple[int, int, int]]:
    return {part.model: (part.created, part.updated, part.unchanged) for part in result.per_model}


def test_a_cycle_is_broken_at_its_nullable_key() -> None:
    plans = plan_models("ImportLibrary", ImportLibrary.model_lookups or {})
    assert [(plan.label, plan.deferred) for plan in plans] == [
        ("testapp.FixtureShelf", ("first_volume",)),
        ("testapp.FixtureVolume", ()),
    ]


def test_a_cycle_without_a_nullable_key_is_refused_naming_models_and_fields() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        plan_models("ImportFarm", {FixtureHen: "code", FixtureEgg: "code"})
    message = str(caught.value)
    assert "testapp.FixtureHen, testapp.FixtureEgg refer to each other in a cycle" in message
    assert "testapp.FixtureHen.egg -> testapp.FixtureEgg (not nullable)" in message
    assert "testapp.FixtureEgg.hen -> testapp.FixtureHen (not nullable)" in message


@pytest.mark.parametrize("order", ["file", "reversed", "shuffled"])
@pytest.mark.parametrize("refs", ["natural keys", "ids"])
def test_the_same_file_gives_the_rows_loaddata_gives(tmp_path: Path, refs: str, order: str) -> None:
    rows = by_natural_key() if refs == "natural keys" else by_id()
    if order == "reversed":
        rows = rows[::-1]
    elif order == "shuffled":
        random.Random(17).shuffle(rows)
    path = write(tmp_path / "library.json", rows)
    call_command("loaddata", str(path), verbosity=0)
    expected = snapshot(with_pks=refs == "ids")
    clear()
    result, _ = run(path, natural_key_fields={"first_volume": ("code",), "shelf": ("code",)})
    assert snapshot(with_pks=refs == "ids") == expected
    # A row created then linked counts once, as created.
    assert counters(result) == {
        "testapp.FixtureShelf": (3, 0, 0),
        "testapp.FixtureVolume": (3, 0, 0),
    }
    again, _ = run(path, "--force")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)


@pytest.mark.parametrize("policy", ["overwrite", "keep_edits", "create_only"])
def test_a_row_whose_only_change_is_the_deferred_key_counts_once_as_updated(
    tmp_path: Path, policy: str
) -> None:
    path = write(tmp_path / "library.json", by_natural_key())
    run(path, "--edit-policy", policy)
    rows = by_natural_key()
    rows[0] = shelf("a", ["v2"])  # only the deferred key changes
    rows[1] = shelf("b", ["v1"], label="Bee")  # the deferred key and another field
    rows.append(shelf("d", ["v2"]))  # a new row, linked in the second pass
    result, _ = run(write(path, rows), "--edit-policy", policy)
    if policy == "create_only":
        assert counters(result)["testapp.FixtureShelf"] == (1, 0, 3)
        assert snapshot(False)["shelves"]["a"] == (None, "A", "v1")
    else:
        assert counters(result)["testapp.FixtureShelf"] == (1, 2, 1)
        assert snapshot(False)["shelves"]["a"] == (None, "A", "v2")
        assert snapshot(False)["shelves"]["b"] == (None, "Bee", "v1")
    assert snapshot(False)["shelves"]["d"] == (None, "D", "v2")
    again, _ = run(path, "--force", "--edit-policy", policy)
    assert (again.created, again.updated) == (0, 0)


def test_keep_edits_remembers_the_key_it_set_in_the_second_pass(tmp_path: Path) -> None:
    path = write(tmp_path / "library.json", by_natural_key())
    run(path)
    # An editor points shelf a at v2; a deploy changes only its label.
    FixtureShelf.objects.filter(code="a").update(first_volume=FixtureVolume.objects.get(code="v2"))
    rows = by_natural_key()
    rows[0] = shelf("a", ["v1"], label="Aye")
    result, _ = run(write(path, rows))
    assert snapshot(False)["shelves"]["a"] == (None, "Aye", "v2")
    assert result.conflicts == ()
    # The file changes the key too: a conflict, the editor's value is kept.
    rows[0] = shelf("a", ["v3"], label="Aye")
    result, out = run(write(path, rows))
    assert snapshot(False)["shelves"]["a"] == (None, "Aye", "v2")
    assert [(c.key, c.field) for c in result.conflicts] == [("code='a'", "first_volume")]
    assert "conflict" in out
    # --overwrite-edits applies the file, and is remembered.
    run(path, "--overwrite-edits")
    assert snapshot(False)["shelves"]["a"] == (None, "Aye", "v3")
    again, _ = run(path, "--force")
    assert (again.updated, again.conflicts) == (0, ())


def test_keep_edits_memories_of_two_models_with_equal_pks_stay_apart(tmp_path: Path) -> None:
    rows = [
        shelf("a", 1, pk=1),
        shelf("b", 2, pk=2),
        volume("v1", 1, pk=1),
        volume("v2", 2, pk=2),
    ]
    path = write(tmp_path / "library.json", rows)
    run(path)
    FixtureShelf.objects.filter(pk=1).update(label="edited")
    rows[0] = shelf("a", 1, pk=1, label="From the file")
    result, _ = run(write(path, rows))
    assert FixtureShelf.objects.get(pk=1).label == "edited"
    assert [(c.key, c.field) for c in result.conflicts] == [("code='a'", "label")]


@pytest.mark.parametrize("broken", ["deferred key", "first pass", "second model"])
def test_an_error_in_any_row_writes_nothing(tmp_path: Path, broken: str) -> None:
    rows = by_natural_key()
    if broken == "deferred key":
        rows[1] = shelf("b", ["nope"])
    elif broken == "first pass":
        rows[2] = shelf("c", None, label="x" * 200)
    else:
        rows[4] = volume("v2", ["nope"])
    path = write(tmp_path / "library.json", rows)
    with pytest.raises(FixtureError) as caught:
        run(path, natural_key_fields={"first_volume": ("code",), "shelf": ("code",)})
    assert str(path) in str(caught.value)
    assert not FixtureShelf.objects.exists() and not FixtureVolume.objects.exists()


def test_a_row_deleted_and_given_again_takes_the_files_deferred_key(tmp_path: Path) -> None:
    rows = by_id()
    rows[2] = shelf("c", 12, pk=3)
    path = write(tmp_path / "library.json", rows)
    run(path)
    FixtureShelf.objects.filter(pk=3).delete()  # the memory of pk 3 stays behind
    rows[2] = shelf("c", 13, pk=3)
    result, _ = run(write(path, rows))
    assert snapshot(True)["shelves"]["c"] == (3, "C", "v3")
    assert result.conflicts == ()
    assert counters(result)["testapp.FixtureShelf"] == (1, 0, 2)


def test_dry_run_names_the_deferred_key_once_per_row(tmp_path: Path) -> None:
    path = write(tmp_path / "library.json", by_natural_key())
    run(path)
    rows = by_natural_key()
    rows[0] = shelf("a", ["v2"], label="Aye")
    rows.append(shelf("d", ["v2"]))
    result, _ = run(write(path, rows), "--dry-run")
    assert result.changes == (
        "create testapp.FixtureShelf code='d'",
        "update testapp.FixtureShelf code='a': label, first_volume",
    )
    assert snapshot(False)["shelves"]["a"] == (None, "A", "v1")
    assert not FixtureShelf.objects.filter(code="d").exists()


class KeelFixturesWithLibrary(KeelFixtures):
    def fixture_commands(self) -> list[tuple[str, BaseHashProtectedCommand]]:
        return [("import_library", ImportLibrary())]


def test_export_check_and_reimport_of_a_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "library.json", by_id()[::-1])
    monkeypatch.setattr(ImportLibrary, "fixture_path", path, raising=False)
    run(path)
    assert ImportLibrary().find_drift() == []
    # An editor moves shelf b's first volume and adds a shelf.
    FixtureShelf.objects.filter(code="b").update(first_volume=FixtureVolume.objects.get(code="v2"))
    FixtureShelf.objects.create(code="e", label="E")
    shown = [str(difference) for difference in ImportLibrary().find_drift()]
    assert len(shown) == 2, shown
    assert any("code='b'" in line and "first_volume" in line for line in shown)
    assert any("code='e'" in line for line in shown)
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(KeelFixturesWithLibrary(), "check", "library", stdout=out)
    assert caught.value.returncode == 1
    call_command(KeelFixturesWithLibrary(), "export", "library", stdout=io.StringIO())
    exported = path.read_bytes()
    rows = json.loads(exported)
    # Shelves first (applied first), each model ordered by its lookup, natural keys, no ids.
    assert [(row["model"], row["fields"]["code"], "pk" in row) for row in rows] == [
        ("testapp.fixtureshelf", "a", False),
        ("testapp.fixtureshelf", "b", False),
        ("testapp.fixtureshelf", "c", False),
        ("testapp.fixtureshelf", "e", False),
        ("testapp.fixturevolume", "v1", False),
        ("testapp.fixturevolume", "v2", False),
        ("testapp.fixturevolume", "v3", False),
    ]
    assert rows[1]["fields"]["first_volume"] == ["v2"]
    out = io.StringIO()
    call_command(KeelFixturesWithLibrary(), "check", "library", stdout=out)
    assert "library: database and files agree." in out.getvalue()
    assert ImportLibrary().export() == [] and path.read_bytes() == exported
    result, _ = run(path, "--force")
    assert (result.created, result.updated, result.unchanged) == (0, 0, 7)
    # The exported file gives the same rows through loaddata.
    expected = snapshot(with_pks=False)
    clear()
    call_command("loaddata", str(path), verbosity=0)
    assert snapshot(with_pks=False) == expected
