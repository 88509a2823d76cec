"""Pruning an import of several models, and symmetrical lists naming rows not yet saved."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.serializers.base import DeserializationError

from keel.fixtures import FixtureError, FixtureImportResult, JsonFixtureUpsertCommand
from tests.testapp.models.fixtures import FixtureBook
from tests.testapp.models.fixtures_formats import FixtureExercise, FixtureLesson, FixtureTopic

pytestmark = pytest.mark.django_db(transaction=True)


class ImportCourse(JsonFixtureUpsertCommand):
    fixture_key = "course-prune"
    model_lookups = {FixtureExercise: "pk", FixtureLesson: "key", FixtureTopic: "slug"}
    natural_key_fields = {"topic": ("slug",), "topics": ("slug",)}
    prune = True


class ImportTopics(JsonFixtureUpsertCommand):
    fixture_key = "topics-links"
    model_class = FixtureTopic
    lookup_field = "slug"


def topic(slug: str, related: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"slug": slug, "name": extra.pop("name", slug.title())}
    if related is not None:
        fields["related"] = related
    return {"model": "testapp.fixturetopic", "fields": fields, **extra}


def lesson(key: str, topic_key: Any = None, title: str | None = None) -> dict[str, Any]:
    fields = {"key": key, "title": title or key.title(), "topic": topic_key}
    return {"model": "testapp.fixturelesson", "fields": fields}


def exercise(pk: int, lesson_key: Any, number: int) -> dict[str, Any]:
    fields = {"lesson": lesson_key, "number": number, "prompt": f"E{number}"}
    return {"model": "testapp.fixtureexercise", "pk": pk, "fields": fields}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def run(command_class: type, path: Path, *args: str, **attrs: Any) -> FixtureImportResult:
    command = command_class()
    command.fixture_path = path
    for name, value in attrs.items():
        setattr(command, name, value)
    call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    result: FixtureImportResult = command.import_result
    return result


def per_model(result: FixtureImportResult) -> dict[str, tuple[int, int, int, int, int]]:
    return {
        part.model: (part.created, part.updated, part.unchanged, part.skipped, part.deleted)
        for part in result.per_model
    }


def links() -> dict[str, list[str]]:
    return {
        t.slug: sorted(other.slug for other in t.related.all())
        for t in FixtureTopic.objects.order_by("slug")
    }


def test_prune_runs_after_every_model_and_keeps_the_rows_the_file_lists(tmp_path: Path) -> None:
    path = write(
        tmp_path / "course.json",
        [topic("old"), topic("web"), lesson("views", ["old"]), exercise(1, ["views"], 1)],
    )
    run(ImportCourse, path)
    views_pk = FixtureLesson.objects.get(key="views").pk
    # The lesson moves to "web"; "old" is no longer listed.
    write(path, [topic("web"), lesson("views", ["web"]), exercise(1, ["views"], 1)])
    result = run(ImportCourse, path)
    views = FixtureLesson.objects.get(key="views")
    assert (views.pk, views.topic.slug) == (views_pk, "web")
    assert FixtureExercise.objects.filter(pk=1, lesson=views).exists()
    assert list(FixtureTopic.objects.values_list("slug", flat=True)) == ["web"]
    assert per_model(result) == {
        "testapp.FixtureTopic": (0, 0, 1, 0, 1),
        "testapp.FixtureLesson": (0, 1, 0, 0, 0),
        "testapp.FixtureExercise": (0, 0, 1, 0, 0),
    }


def test_a_moved_row_keeps_its_links_and_edits_when_its_old_parent_is_pruned(
    tmp_path: Path,
) -> None:
    views = {"model": "testapp.fixturelesson", "fields": {"key": "views", "topic": ["old"]}}
    views["fields"]["topics"] = [["web"]]
    path = write(tmp_path / "course.json", [topic("old"), topic("web"), views])
    run(ImportCourse, path)
    FixtureLesson.objects.filter(key="views").update(title="Edited")
    views["fields"]["topic"] = ["web"]
    write(path, [topic("web"), views])
    run(ImportCourse, path)
    moved = FixtureLesson.objects.get(key="views")
    assert (moved.title, moved.topic.slug) == ("Edited", "web")
    assert [t.slug for t in moved.topics.all()] == ["web"]


def test_a_new_value_colliding_with_a_row_the_prune_deletes_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "course.json",
        [topic("web"), lesson("views", ["web"]), exercise(1, ["views"], 1)],
    )
    run(ImportCourse, path)
    write(path, [topic("web"), lesson("views", ["web"]), exercise(2, ["views"], 1)])
    with pytest.raises(FixtureError, match="unique"):
        run(ImportCourse, path)
    assert list(FixtureExercise.objects.values_list("pk", flat=True)) == [1]


class ImportBooks(JsonFixtureUpsertCommand):
    fixture_key = "books-prune"
    model_lookups = {FixtureBook: "key", FixtureTopic: "slug"}
    natural_key_fields = {"parent": ("key",)}
    prune = True


def test_rows_a_pruned_row_takes_with_it_are_counted_under_their_model(tmp_path: Path) -> None:
    def book(key: str, parent: str | None = None) -> dict[str, Any]:
        fields = {"key": key, "title": key.title(), "parent": [parent] if parent else None}
        return {"model": "testapp.fixturebook", "fields": fields}

    rows = [book("root"), book("leaf", "root"), book("kept")]
    path = write(tmp_path / "books.json", [topic("web"), *rows])
    run(ImportBooks, path)
    write(path, [topic("web"), book("kept")])
    result = run(ImportBooks, path)
    assert per_model(result)["testapp.FixtureBook"] == (0, 0, 1, 0, 2)
    assert list(FixtureBook.objects.values_list("key", flat=True)) == ["kept"]


def test_prune_deletes_children_before_parents(tmp_path: Path) -> None:
    path = write(
        tmp_path / "course.json",
        [topic("old"), topic("web"), lesson("gone", ["old"]), exercise(1, ["gone"], 1)],
    )
    run(ImportCourse, path)
    write(path, [topic("web")])
    result = run(ImportCourse, path)
    assert per_model(result) == {
        "testapp.FixtureTopic": (0, 0, 1, 0, 1),
        "testapp.FixtureLesson": (0, 0, 0, 0, 1),
        "testapp.FixtureExercise": (0, 0, 0, 0, 1),
    }
    assert not FixtureLesson.objects.exists() and not FixtureExercise.objects.exists()


def test_prune_refuses_to_cascade_into_a_row_an_edit_points_at_a_pruned_row(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "course.json", [topic("old"), topic("web"), lesson("views", ["web"])])
    run(ImportCourse, path)
    # An editor moves the lesson to "old" and retitles it; keep_edits keeps both.
    FixtureLesson.objects.filter(key="views").update(
        topic=FixtureTopic.objects.get(slug="old"), title="Editor"
    )
    write(path, [topic("web"), lesson("views", ["web"])])
    with pytest.raises(FixtureError) as caught:
        run(ImportCourse, path)
    message = str(caught.value)
    assert "testapp.FixtureTopic slug='old'" in message
    assert "testapp.FixtureLesson key='views'" in message
    assert "'topic'" in message
    views = FixtureLesson.objects.get(key="views")
    assert (views.title, views.topic.slug) == ("Editor", "old")
    assert FixtureTopic.objects.filter(slug="old").exists()


def test_prune_refuses_to_delete_a_stored_row_a_listed_row_names(tmp_path: Path) -> None:
    FixtureTopic.objects.create(slug="stored", name="Stored")
    path = write(tmp_path / "course.json", [lesson("views", ["stored"])])
    with pytest.raises(FixtureError, match="slug='stored'"):
        run(ImportCourse, path)
    assert FixtureTopic.objects.filter(slug="stored").exists()
    assert not FixtureLesson.objects.exists()


def test_prune_of_a_tree_keeps_listed_children_of_a_pruned_parent_refused(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "course.json", [lesson("a"), lesson("b")])
    run(ImportCourse, path)
    assert (FixtureLesson.objects.count(), FixtureTopic.objects.count()) == (2, 0)
    write(path, [lesson("b")])
    result = run(ImportCourse, path)
    assert per_model(result)["testapp.FixtureLesson"] == (0, 0, 1, 0, 1)


@pytest.mark.parametrize(
    "lists",
    [
        {"a": ["b"], "b": ["c"], "c": []},
        {"a": ["b", "c"], "b": [], "c": ["a"]},
        {"a": ["a"], "b": ["a"], "c": ["b", "c"]},
        {"c": [], "a": ["c"], "b": ["a", "c"]},
    ],
)
@pytest.mark.parametrize("by", ["natural key", "id"])
def test_symmetrical_lists_end_as_loaddata_leaves_them(
    tmp_path: Path, lists: dict[str, list[str]], by: str
) -> None:
    ids = {"a": 1, "b": 2, "c": 3}
    rows = [
        topic(slug, [[x] if by == "natural key" else ids[x] for x in targets], pk=ids[slug])
        for slug, targets in lists.items()
    ]
    path = write(tmp_path / "topics.json", rows)
    call_command("loaddata", str(path), verbosity=0)
    expected = links()
    FixtureTopic.objects.all().delete()
    run(ImportTopics, path)
    assert links() == expected
    result = run(ImportTopics, path, "--force")
    assert links() == expected
    assert (result.created, result.updated) == (0, 0)


def test_symmetrical_chain_forward_by_natural_key_keeps_the_last_link(tmp_path: Path) -> None:
    # loaddata sets c's empty list first (its targets exist), then a's and b's.
    path = write(
        tmp_path / "topics.json", [topic("a", [["b"]]), topic("b", [["c"]]), topic("c", [])]
    )
    run(ImportTopics, path)
    assert links() == {"a": [], "b": ["c"], "c": ["b"]}


class ImportLessonsKeyed(JsonFixtureUpsertCommand):
    fixture_key = "lessons-keyed"
    model_lookups = {FixtureLesson: "key", FixtureTopic: "slug"}
    natural_key_fields = {"topic": ("slug",), "topics": ("slug",), "prerequisites": ("key",)}


def loaddata_or_error(path: Path) -> Any:
    try:
        call_command("loaddata", str(path), verbosity=0)
    except DeserializationError:
        return "refused"
    return lesson_state()


def lesson_state() -> dict[str, Any]:
    return {
        x.key: (
            x.topic.slug if x.topic else None,
            sorted(t.slug for t in x.topics.all()),
            sorted(p.key for p in x.prerequisites.all()),
        )
        for x in FixtureLesson.objects.order_by("key")
    }


def keel_or_error(path: Path) -> Any:
    try:
        run(ImportLessonsKeyed, path)
    except FixtureError:
        return "refused"
    return lesson_state()


@pytest.mark.parametrize(
    "rows",
    [
        [lesson("views", ["WEB"])],
        [{"model": "testapp.fixturelesson", "fields": {"key": "v", "topics": [["WEB"]]}}],
        [topic("python"), lesson("views", ["WEB"])],
    ],
    ids=["foreign key", "many-to-many", "foreign key, file"],
)
def test_natural_key_fields_match_a_stored_key_as_the_database_compares(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    FixtureTopic.objects.create(slug="web", name="Web")
    path = write(tmp_path / "course.json", rows)
    expected = loaddata_or_error(path)
    FixtureLesson.objects.all().delete()
    FixtureTopic.objects.exclude(slug="web").delete()
    assert keel_or_error(path) == expected


def test_natural_key_fields_match_a_key_of_the_same_file_as_the_database_compares(
    tmp_path: Path,
) -> None:
    rows = [
        lesson("intro"),
        {
            "model": "testapp.fixturelesson",
            "fields": {"key": "views", "prerequisites": [["INTRO"]]},
        },
        topic("web"),
        lesson("more", ["WEB"]),
    ]
    path = write(tmp_path / "course.json", rows)
    expected = loaddata_or_error(path)
    FixtureLesson.objects.all().delete()
    FixtureTopic.objects.all().delete()
    assert keel_or_error(path) == expected
