"""Files of several models in loaddata's format, applied in dependency order, and many-to-many
links between rows of one file (self-referential ones included), in any row order: the same
rows and links as ``loaddata`` gives for the same file."""

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
from django.db import connection
from django.test.utils import CaptureQueriesContext

from keel.fixtures import (
    BaseHashProtectedCommand,
    FixtureError,
    FixtureImportResult,
    JsonFixtureUpsertCommand,
)
from keel.fixtures.commands import spool
from keel.fixtures.plan import plan_models
from keel.management.commands.keel_fixtures import Command as KeelFixtures
from keel.signals import fixture_imported
from tests.testapp.models.fixtures import FixtureCategory
from tests.testapp.models.fixtures_formats import (
    FixtureEgg,
    FixtureExercise,
    FixtureHen,
    FixtureLesson,
    FixtureTopic,
)
from tests.testapp.models.site import SiteSettings

pytestmark = pytest.mark.django_db(transaction=True)


class ImportCourse(JsonFixtureUpsertCommand):
    fixture_key = "course"
    # Declared in an order that is not the dependency order: the import sorts them.
    model_lookups = {
        FixtureExercise: "pk",
        "testapp.FixtureLesson": "key",
        "testapp.fixturetopic": "slug",
    }
    natural_key_fields = {"topic": ("slug",), "topics": ("slug",)}


class ImportLessons(JsonFixtureUpsertCommand):
    fixture_key = "lessons"
    model_class = FixtureLesson
    lookup_field = "key"


def topic(slug: str, related: list[Any], pk: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": "testapp.fixturetopic",
        "fields": {"slug": slug, "name": slug.title(), "related": related},
    }
    if pk is not None:
        row["pk"] = pk
    return row


def lesson(
    key: str, main: Any, topics: list[Any], prerequisites: list[Any], pk: int | None = None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": "testapp.fixturelesson",
        "fields": {
            "key": key,
            "title": key.title(),
            "topic": main,
            "topics": topics,
            "prerequisites": prerequisites,
        },
    }
    if pk is not None:
        row["pk"] = pk
    return row


def exercise(pk: int, lesson: Any, number: int) -> dict[str, Any]:
    return {
        "model": "testapp.fixtureexercise",
        "pk": pk,
        "fields": {"lesson": lesson, "number": number, "prompt": f"Exercise {number}"},
    }


def by_natural_key() -> list[dict[str, Any]]:
    return [
        topic("python", [["web"], ["data"]]),
        topic("web", [["python"]]),
        topic("data", [["python"]]),
        lesson("intro", ["python"], [["python"], ["web"]], []),
        lesson("views", ["web"], [["web"]], [["intro"]]),
        lesson("deploy", None, [], [["views"], ["intro"], ["deploy"]]),
        exercise(1, ["views"], 1),
        exercise(2, ["intro"], 1),
        exercise(3, ["intro"], 2),
    ]


def by_id() -> list[dict[str, Any]]:
    return [
        topic("python", [2, 3], pk=1),
        topic("web", [1], pk=2),
        topic("data", [1], pk=3),
        lesson("intro", 1, [1, 2], [], pk=10),
        lesson("views", 2, [2], [10], pk=11),
        lesson("deploy", None, [], [11, 10, 12], pk=12),
        exercise(1, 11, 1),
        exercise(2, 10, 1),
        exercise(3, 10, 2),
    ]


def ordered(rows: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    if order == "reversed":
        return rows[::-1]
    if order == "shuffled":
        rows = list(rows)
        random.Random(14).shuffle(rows)
    return rows


def snapshot(with_pks: bool) -> dict[str, Any]:
    """Every row and link of the three models, by natural key (and pk when the file gives it)."""
    topics = {
        t.slug: (t.pk if with_pks else None, t.name, sorted(r.slug for r in t.related.all()))
        for t in FixtureTopic.objects.prefetch_related("related")
    }
    lessons = {
        item.key: (
            item.pk if with_pks else None,
            item.title,
            item.topic.slug if item.topic else None,
            sorted(t.slug for t in item.topics.all()),
            sorted(p.key for p in item.prerequisites.all()),
        )
        for item in FixtureLesson.objects.select_related("topic")
    }
    exercises = {
        e.pk: (e.lesson.key, e.number, e.prompt)
        for e in FixtureExercise.objects.select_related("lesson")
    }
    return {"topics": topics, "lessons": lessons, "exercises": exercises}


def clear() -> None:
    FixtureExercise.objects.all().delete()
    FixtureLesson.objects.all().delete()
    FixtureTopic.objects.all().delete()


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def run(
    path: Path, *args: str, command: JsonFixtureUpsertCommand | None = None, **attributes: Any
) -> tuple[FixtureImportResult, str]:
    command = command or ImportCourse()
    command.fixture_path = path  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(command, name, value)
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    assert command.import_result is not None
    return command.import_result, out.getvalue()


def loaddata(path: Path) -> None:
    call_command("loaddata", str(path), verbosity=0)


def counters(result: FixtureImportResult) -> dict[str, tuple[int, int, int, int]]:
    return {
        part.model: (part.created, part.updated, part.unchanged, part.deleted)
        for part in result.per_model
    }


# -- the same rows and links as loaddata ------------------------------------------------------


@pytest.mark.parametrize("order", ["file", "reversed", "shuffled"])
@pytest.mark.parametrize("refs", ["natural keys", "ids"])
def test_the_same_file_gives_the_rows_and_links_loaddata_gives(
    tmp_path: Path, order: str, refs: str
) -> None:
    rows = ordered(by_natural_key() if refs == "natural keys" else by_id(), order)
    path = write(tmp_path / "course.json", rows)
    loaddata(path)
    expected = snapshot(with_pks=refs == "ids")
    assert expected["lessons"]["deploy"][4] == ["deploy", "intro", "views"]
    assert expected["topics"]["web"][2] == ["python"]
    clear()

    result, _ = run(path)

    assert snapshot(with_pks=refs == "ids") == expected
    assert (result.created, result.updated, result.unchanged) == (9, 0, 0)


@pytest.mark.parametrize("order", ["file", "reversed"])
def test_a_symmetrical_list_naming_a_later_row_is_set_last_even_when_that_row_is_stored(
    tmp_path: Path, order: str
) -> None:
    # loaddata puts off a list naming by natural key a row it has not saved yet; keel decides
    # by the rows' places in the file, not by what is stored, so that a re-import of a file
    # ends as its first import did. "python" names the later "web": its list is set last.
    first = write(tmp_path / "first.json", [topic("web", []), topic("python", [])])
    rows = ordered([topic("python", [["web"]]), topic("web", [])], order)
    path = write(tmp_path / "topics.json", rows)

    run(first)
    result, _ = run(path)

    assert snapshot(with_pks=False)["topics"]["python"][2] == ["web"]
    assert snapshot(with_pks=False)["topics"]["web"][2] == ["python"]
    assert result.updated == 2
    result, _ = run(path, "--force")
    assert (result.created, result.updated) == (0, 0)


def test_self_links_of_one_model_by_natural_key_and_id_in_any_order(tmp_path: Path) -> None:
    rows = [
        lesson("c", None, [], [["b"], ["a"]]),
        lesson("b", None, [], [["a"]]),
        lesson("a", None, [], []),
    ]
    result, _ = run(write(tmp_path / "lessons.json", rows), command=ImportLessons())
    assert result.created == 3
    assert sorted(p.key for p in FixtureLesson.objects.get(key="c").prerequisites.all()) == [
        "a",
        "b",
    ]
    a = FixtureLesson.objects.get(key="a").pk
    rows = [lesson("d", None, [], [a, 77], pk=78), lesson("e", None, [], [], pk=77)]
    result, _ = run(write(tmp_path / "more.json", rows), command=ImportLessons())
    assert result.created == 2
    assert sorted(p.key for p in FixtureLesson.objects.get(key="d").prerequisites.all()) == [
        "a",
        "e",
    ]


# -- counters, re-imports, dependency order ---------------------------------------------------


def test_each_model_has_exact_counters_and_a_reimport_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "course.json", ordered(by_natural_key(), "shuffled"))

    result, out = run(path)

    assert result.model == "testapp.FixtureTopic, testapp.FixtureLesson, testapp.FixtureExercise"
    assert counters(result) == {
        "testapp.FixtureTopic": (3, 0, 0, 0),
        "testapp.FixtureLesson": (3, 0, 0, 0),
        "testapp.FixtureExercise": (3, 0, 0, 0),
    }
    assert "course: 9 created, 0 updated, 0 unchanged, 0 skipped, 0 deleted" in out
    assert "  testapp.FixtureLesson: 3 created, 0 updated, 0 unchanged" in out

    result, out = run(path)
    assert result.status == "unchanged" and "course: unchanged, skipped" in out

    result, _ = run(path, "--force")
    assert (result.created, result.updated, result.deleted) == (0, 0, 0)
    assert result.unchanged == 9

    rows = by_natural_key()
    rows[2]["fields"]["name"] = "Data science"  # a topic's value
    rows[4]["fields"]["prerequisites"] = []  # a lesson's links only
    result, _ = run(write(path, rows))
    assert counters(result) == {
        "testapp.FixtureTopic": (0, 1, 2, 0),
        "testapp.FixtureLesson": (0, 1, 2, 0),
        "testapp.FixtureExercise": (0, 0, 3, 0),
    }
    assert not FixtureLesson.objects.get(key="views").prerequisites.exists()


def test_models_are_applied_after_the_models_they_refer_to() -> None:
    plans = plan_models("ImportCourse", ImportCourse.model_lookups or {})
    assert [plan.model for plan in plans] == [FixtureTopic, FixtureLesson, FixtureExercise]
    assert [plan.lookup for plan in plans] == ["slug", "key", "pk"]
    # Models that do not refer to each other keep the order they are declared in.
    plans = plan_models("X", {FixtureCategory: "slug", FixtureTopic: "slug"})
    assert [plan.model for plan in plans] == [FixtureCategory, FixtureTopic]


def test_dry_run_writes_nothing_and_names_each_change_with_its_model(tmp_path: Path) -> None:
    path = write(tmp_path / "course.json", by_natural_key())
    result, out = run(path, "--dry-run")
    assert result.status == "dry-run" and result.created == 9
    assert "would create testapp.FixtureTopic slug='python'" in out
    assert "would create testapp.FixtureExercise id=1" in out
    assert out.index("  testapp.FixtureExercise: 3 created") < out.index("would create")
    assert not FixtureTopic.objects.exists() and not FixtureExercise.objects.exists()


def test_prune_deletes_per_model_the_rows_the_file_no_longer_lists(tmp_path: Path) -> None:
    path = write(tmp_path / "course.json", by_natural_key())
    run(path)
    rows = [row for row in by_natural_key() if row.get("pk") != 3]
    rows = [row for row in rows if row["fields"].get("slug") != "data"]
    rows[0]["fields"]["related"] = [["web"]]
    result, _ = run(write(path, rows), prune=True)
    assert counters(result)["testapp.FixtureTopic"][3] == 1
    assert counters(result)["testapp.FixtureExercise"][3] == 1
    assert sorted(FixtureTopic.objects.values_list("slug", flat=True)) == ["python", "web"]


# -- edit policies ----------------------------------------------------------------------------


def test_create_only_leaves_rows_and_links_that_exist(tmp_path: Path) -> None:
    path = write(tmp_path / "course.json", by_natural_key())
    run(path)
    rows = by_natural_key()
    rows[4]["fields"]["prerequisites"] = []
    rows[4]["fields"]["title"] = "Changed"
    rows.append(lesson("extra", ["data"], [["data"]], [["views"]]))
    result, _ = run(write(path, rows), edit_policy="create_only")
    assert counters(result)["testapp.FixtureLesson"] == (1, 0, 3, 0)
    views = FixtureLesson.objects.get(key="views")
    assert views.title == "Views" and [p.key for p in views.prerequisites.all()] == ["intro"]
    extra = FixtureLesson.objects.get(key="extra")
    assert [p.key for p in extra.prerequisites.all()] == ["views"]


def test_keep_edits_keeps_an_edited_value_of_any_model_and_reports_it(tmp_path: Path) -> None:
    path = write(tmp_path / "course.json", by_natural_key())
    run(path)
    FixtureTopic.objects.filter(slug="web").update(name="World wide web")
    rows = by_natural_key()
    rows[1]["fields"]["name"] = "The web"
    rows[3]["fields"]["title"] = "Introduction"
    result, out = run(write(path, rows))
    assert FixtureTopic.objects.get(slug="web").name == "World wide web"
    assert FixtureLesson.objects.get(key="intro").title == "Introduction"
    assert [conflict.field for conflict in result.conflicts] == ["name"]
    assert "conflict:" in out


# -- errors: file, row, field; nothing written ------------------------------------------------


def test_a_model_the_command_does_not_declare_is_an_error_naming_file_row_and_model(
    tmp_path: Path,
) -> None:
    rows = [*by_natural_key(), {"model": "testapp.fixturecategory", "fields": {"slug": "x"}}]
    path = write(tmp_path / "course.json", rows)
    with pytest.raises(FixtureError) as caught:
        run(path)
    message = str(caught.value)
    assert str(path) in message and "row 9" in message and "'testapp.fixturecategory'" in message
    assert caught.value.field == "model"
    assert not FixtureTopic.objects.exists()


def test_a_row_without_its_model_is_an_error(tmp_path: Path) -> None:
    rows = [*by_natural_key(), {"fields": {"slug": "x"}}]
    with pytest.raises(FixtureError, match=r"row 9.*names no model"):
        run(write(tmp_path / "course.json", rows))


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (3, "topic", "no testapp.FixtureTopic with natural key \\['nope'\\]"),
        (4, "prerequisites", "no testapp.FixtureLesson with natural key \\['nope'\\]"),
        (1, "related", "no testapp.FixtureTopic with natural key \\['nope'\\]"),
        (6, "lesson", "no testapp.FixtureLesson with natural key \\['nope'\\]"),
        (5, "topics", "no testapp.FixtureTopic with natural key \\['nope'\\]"),
    ],
)
def test_a_reference_to_no_row_names_file_row_and_field_and_nothing_is_written(
    tmp_path: Path, row: int, field: str, message: str
) -> None:
    rows = by_natural_key()
    many = field in {"topics", "related", "prerequisites"}
    rows[row]["fields"][field] = [["nope"]] if many else ["nope"]
    path = write(tmp_path / "course.json", ordered(rows, "reversed"))
    with pytest.raises(FixtureError, match=message) as caught:
        run(path)
    assert caught.value.field == field
    assert str(path) in str(caught.value) and f"row {len(rows) - 1 - row}" in str(caught.value)
    assert not FixtureTopic.objects.exists()
    assert not FixtureLesson.objects.exists()


def test_every_row_is_checked_before_the_first_model_is_written(tmp_path: Path) -> None:
    rows = by_natural_key()
    rows[-1]["fields"]["number"] = "many"
    with (
        CaptureQueriesContext(connection) as queries,
        pytest.raises(FixtureError, match=r"row 8.*number"),
    ):
        run(write(tmp_path / "course.json", rows))
    tables = [FixtureTopic._meta.db_table, FixtureLesson._meta.db_table]
    assert not [
        query["sql"]
        for query in queries.captured_queries
        if any(table in query["sql"] for table in tables)
    ]
    assert not FixtureTopic.objects.exists()


@pytest.mark.parametrize("spooled", [False, True])
@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_models_spread_over_several_files_and_batches(
    tmp_path: Path, batch_size: int, spooled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if spooled:  # every batch waits on disk between checking and writing, as for big files
        monkeypatch.setattr(spool, "_HOLD_FILE_BYTES", -1)
    rows = ordered(by_natural_key(), "shuffled")
    first = write(tmp_path / "a.json", rows[:4])
    second = write(tmp_path / "b.jsonl", [])
    second.write_text("\n".join(json.dumps(row) for row in rows[4:]), encoding="utf-8")
    command = ImportCourse()
    command.fixture_paths = [first, second]  # type: ignore[misc]
    command.batch_size = batch_size  # type: ignore[misc]
    call_command(command, stdout=io.StringIO(), stderr=io.StringIO())
    assert command.import_result is not None and command.import_result.created == 9
    loaded = snapshot(with_pks=False)
    clear()
    call_command("loaddata", str(first), str(second), verbosity=0)
    assert snapshot(with_pks=False) == loaded

    broken = rows[4:]
    position = next(i for i, row in enumerate(broken) if "prerequisites" in row["fields"])
    broken[position]["fields"]["prerequisites"] = [["nope"]]
    second.write_text("\n".join(json.dumps(row) for row in broken), encoding="utf-8")
    command = ImportCourse()
    command.fixture_paths = [first, second]  # type: ignore[misc]
    command.batch_size = batch_size  # type: ignore[misc]
    with pytest.raises(FixtureError) as caught:
        call_command(command, stdout=io.StringIO(), stderr=io.StringIO())
    assert str(second) in str(caught.value) and f"row {position}" in str(caught.value)
    assert caught.value.field == "prerequisites"


def test_a_duplicate_key_of_one_model_is_an_error(tmp_path: Path) -> None:
    rows = [*by_natural_key(), lesson("intro", None, [], [])]
    with pytest.raises(FixtureError, match="duplicate lookup value") as caught:
        run(write(tmp_path / "course.json", rows))
    assert caught.value.field == "key"
    assert not FixtureTopic.objects.exists()


# -- declaring the models ---------------------------------------------------------------------


def test_model_lookups_with_a_one_model_attribute_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="model_lookups and model_class"):

        class Both(JsonFixtureUpsertCommand):
            model_class = FixtureTopic
            model_lookups = {FixtureTopic: "slug"}


def test_model_lookups_needs_bulk_writes() -> None:
    with pytest.raises(ImproperlyConfigured, match="use_bulk = True"):

        class Saved(JsonFixtureUpsertCommand):
            model_lookups = {FixtureTopic: "slug"}
            use_bulk = False


@pytest.mark.parametrize(
    ("lookups", "message"),
    [
        ({"testapp.nothing": "slug"}, "model_lookups: 'testapp.nothing'"),
        ({FixtureTopic: ""}, "is a field name"),
        ({FixtureTopic: "slug", "testapp.fixturetopic": "slug"}, "twice"),
        ({}, "non-empty mapping"),
        ({FixtureHen: "code", FixtureEgg: "code"}, "FixtureHen, testapp.FixtureEgg refer"),
    ],
)
def test_a_malformed_declaration_is_refused_when_the_command_runs(
    tmp_path: Path, lookups: dict[Any, Any], message: str
) -> None:
    path = write(tmp_path / "course.json", by_natural_key())
    with pytest.raises(ImproperlyConfigured, match=message):
        run(path, model_lookups=lookups)


def test_the_content_hash_covers_the_declared_models(tmp_path: Path) -> None:
    path = write(tmp_path / "course.json", by_natural_key())
    run(path)
    lookups = {**(ImportCourse.model_lookups or {}), FixtureCategory: "slug"}
    result, _ = run(path, model_lookups=lookups)
    assert result.status == "imported" and result.unchanged == 9


def test_export_writes_loaddata_format_grouped_per_model_and_reimports_unchanged(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "course.json", ordered(by_natural_key(), "shuffled"))
    run(path)
    command = ImportCourse()
    command.fixture_path = path  # type: ignore[misc]
    assert command.export() == [path]
    rows = json.loads(path.read_text(encoding="utf-8"))
    # Grouped per model in the order applied, each model ordered by its lookup, no ids but
    # the lookup's own (exercises are matched on pk).
    assert [(row["model"], row.get("pk")) for row in rows] == [
        *(("testapp.fixturetopic", None),) * 3,
        *(("testapp.fixturelesson", None),) * 3,
        ("testapp.fixtureexercise", 1),
        ("testapp.fixtureexercise", 2),
        ("testapp.fixtureexercise", 3),
    ]
    assert [row["fields"]["slug"] for row in rows[:3]] == ["data", "python", "web"]
    assert rows[4]["fields"]["topic"] == ["python"]
    first = path.read_bytes()
    assert command.export() == [] and path.read_bytes() == first
    result, _ = run(path, "--force")
    assert (result.created, result.updated, result.unchanged) == (0, 0, 9)


class KeelFixturesWithCourse(KeelFixtures):
    def fixture_commands(self) -> list[tuple[str, BaseHashProtectedCommand]]:
        return [("import_course", ImportCourse())]


class ImportSiteAndTopics(JsonFixtureUpsertCommand):
    fixture_key = "site-and-topics"
    model_lookups = {FixtureTopic: "slug", SiteSettings: "pk"}
    edit_policy = "overwrite"


def test_export_of_several_models_never_writes_a_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path / "site.json",
        [
            {
                "model": "testapp.sitesettings",
                "pk": 1,
                "fields": {"site_name": "Shop", "stripe_secret_key": "sk_live_123"},
            },
            topic("web", []),
        ],
    )
    run(path, command=ImportSiteAndTopics())
    command = ImportSiteAndTopics()
    command.fixture_path = path  # type: ignore[misc]
    command.export()
    text = path.read_text(encoding="utf-8")
    assert "sk_live" not in text and "stripe_secret_key" not in text
    assert [row["model"] for row in json.loads(text)] == [
        "testapp.fixturetopic",
        "testapp.sitesettings",
    ]
    result, _ = run(path, "--force", command=ImportSiteAndTopics())
    assert (result.created, result.updated) == (0, 0)
    assert SiteSettings.objects.get().stripe_secret_key == "sk_live_123"


def test_check_compares_every_model_row_by_row_and_export_settles_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "course.json", by_natural_key())
    monkeypatch.setattr(ImportCourse, "fixture_path", path, raising=False)
    run(path)
    assert ImportCourse().find_drift() == []
    FixtureLesson.objects.filter(key="views").update(title="Edited")
    FixtureTopic.objects.create(slug="extra", name="Extra")
    differences = ImportCourse().find_drift()
    shown = [str(difference) for difference in differences]
    assert len(shown) == 2, shown
    assert any("title" in line and "Edited" in line for line in shown)
    assert any("extra" in line for line in shown)
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(KeelFixturesWithCourse(), "check", "course", stdout=out)
    assert caught.value.returncode == 1
    assert "course: 2 differences" in out.getvalue()
    call_command(KeelFixturesWithCourse(), "export", "course", stdout=io.StringIO())
    out = io.StringIO()
    call_command(KeelFixturesWithCourse(), "check", "course", stdout=out)
    assert "course: database and files agree." in out.getvalue()


def test_fixture_imported_is_sent_once_per_changed_model_with_its_result(tmp_path: Path) -> None:
    path = write(tmp_path / "course.json", by_natural_key())
    run(path)
    sent: list[tuple[Any, int, int]] = []

    def receiver(sender: Any, using: str, result: FixtureImportResult, **kwargs: Any) -> None:
        sent.append((sender, result.created, result.updated))

    fixture_imported.connect(receiver, dispatch_uid="formats-test")
    try:
        rows = by_natural_key()
        rows[0]["fields"]["name"] = "Python 3"
        rows.append(lesson("extra", None, [], []))
        run(write(path, rows))
    finally:
        fixture_imported.disconnect(dispatch_uid="formats-test")
    assert sent == [(FixtureTopic, 0, 1), (FixtureLesson, 1, 0)]
