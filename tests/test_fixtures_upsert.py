"""JsonFixtureUpsertCommand: validation before writing, one transaction, exact counters,
bulk writes in O(N / batch size) queries, the content hash kept in the database."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext

from keel.fixtures import FixtureError, FixtureImportResult, JsonFixtureUpsertCommand
from keel.models import FixtureState
from keel.signals import fixture_imported
from tests.testapp.management.commands.fixtures_import_articles import (
    Command as ImportArticles,
)
from tests.testapp.management.commands.fixtures_import_categories import (
    Command as ImportCategories,
)
from tests.testapp.management.commands.fixtures_import_entries import Command as ImportEntries
from tests.testapp.models.fixtures import (
    FixtureArticle,
    FixtureCategory,
    FixtureCommentedEntry,
    FixtureEntry,
    FixtureTag,
)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other"])


def entry(i: int, **fields: Any) -> dict[str, Any]:
    values = {"key": f"e-{i}", "label": f"Entry {i}", "amount": f"{i}.50"}
    values.update(fields)
    return {"model": "testapp.fixtureentry", "fields": values}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


def entries_command(path: Path, **attributes: Any) -> ImportEntries:
    command = ImportEntries()
    command.fixture_path = path  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(command, name, value)
    return command


def run(command: JsonFixtureUpsertCommand, *args: str, **options: Any) -> FixtureImportResult:
    options.setdefault("stdout", io.StringIO())
    options.setdefault("stderr", io.StringIO())
    call_command(command, *args, **options)
    assert command.import_result is not None
    return command.import_result


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        calls.append(kwargs)

    fixture_imported.connect(receiver, dispatch_uid="test-fixtures-received")
    yield calls
    fixture_imported.disconnect(dispatch_uid="test-fixtures-received")


# -- counters and values ---------------------------------------------------------------------


def test_first_import_creates_then_changes_are_counted_exactly(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(5)])
    result = run(entries_command(path))
    assert (result.created, result.updated, result.unchanged, result.deleted) == (5, 0, 0, 0)
    assert FixtureEntry.objects.get(key="e-3").amount == Decimal("3.50")

    rows = [entry(i) for i in range(6)]
    rows[1]["fields"]["label"] = "changed"
    rows[2]["fields"]["amount"] = "2.5"  # the same Decimal as 2.50: not a change
    write(path, rows)
    result = run(entries_command(path))
    assert (result.created, result.updated, result.unchanged) == (1, 1, 4)
    assert FixtureEntry.objects.get(key="e-1").label == "changed"


def test_strings_are_converted_by_each_field(tmp_path: Path) -> None:
    command = ImportArticles()
    run(ImportCategories())
    call_command("fixtures_import_tags", stdout=io.StringIO())
    result = run(command)
    assert result.created == 3
    welcome = FixtureArticle.objects.get(key="welcome")
    assert welcome.published is True
    assert welcome.price == Decimal("12.50")
    assert welcome.publish_date.isoformat() == "2026-01-02"
    assert welcome.rank == 1
    assert welcome.category is not None and welcome.category.slug == "news"
    assert sorted(welcome.tags.values_list("name", flat=True)) == ["django", "python"]
    assert FixtureArticle.objects.get(key="about").category.slug == "guides"  # type: ignore[union-attr]


def test_an_unchanged_file_is_skipped_with_only_the_hash_read(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(20)])
    run(entries_command(path))
    with CaptureQueriesContext(connection) as queries:
        result = run(entries_command(path))
    assert result.status == "unchanged"
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert FixtureState._meta.db_table in queries[0]["sql"]


def test_force_reimports_an_unchanged_file_and_counts_it_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(3)])
    run(entries_command(path))
    result = run(entries_command(path), "--force")
    assert (result.status, result.created, result.updated, result.unchanged) == (
        "imported",
        0,
        0,
        3,
    )


def test_a_reset_database_imports_again(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(3)])
    run(entries_command(path))
    # What a restore of an older dump or a fresh database looks like: no rows, no hash.
    FixtureEntry.objects.all().delete()
    FixtureState.objects.all().delete()
    result = run(entries_command(path))
    assert result.status == "imported" and result.created == 3
    assert FixtureEntry.objects.count() == 3


def test_the_hash_is_kept_per_database(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(3)])
    run(entries_command(path))
    result = run(entries_command(path), database="other")
    assert result.created == 3
    assert FixtureEntry.objects.using("other").count() == 3
    assert FixtureState.objects.using("other").filter(key="testapp.entries").exists()
    assert run(entries_command(path), database="other").status == "unchanged"


# -- bad input: an error naming file, row and field, and nothing written ----------------------


def test_a_bad_row_at_the_end_of_10000_rows_writes_nothing(tmp_path: Path) -> None:
    rows = [entry(i) for i in range(10_000)]
    rows[-1]["fields"]["amount"] = "twelve"
    path = write(tmp_path / "e.json", rows)
    with pytest.raises(FixtureError) as caught:
        run(entries_command(path))
    assert (caught.value.path, caught.value.row, caught.value.field) == (path, 9999, "amount")
    assert str(path) in str(caught.value) and "'twelve'" in str(caught.value)
    assert FixtureEntry.objects.count() == 0
    assert not FixtureState.objects.exists()


def test_a_failure_while_writing_rolls_back_earlier_batches(tmp_path: Path) -> None:
    # The unknown category id is found only while writing the last batch: the batches written
    # before it must be rolled back with it, and no hash stored.
    run(ImportCategories())
    rows = [
        {"model": "testapp.fixturearticle", "fields": {"key": f"a-{i}", "category": ["news"]}}
        for i in range(2_500)
    ]
    rows[-1]["fields"]["category"] = 999_999
    path = write(tmp_path / "a.json", rows)
    command = ImportArticles()
    command.fixture_path = path  # type: ignore[misc]
    command.batch_size = 1000  # type: ignore[misc]
    with pytest.raises(FixtureError) as caught:
        run(command)
    assert (caught.value.row, caught.value.field) == (2499, "category")
    assert "no testapp.FixtureCategory with id 999999" in str(caught.value)
    assert FixtureArticle.objects.count() == 0
    assert not FixtureState.objects.filter(key="testapp.articles").exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"key": "x", "label": "l", "amount": "1", "colour": "red"}, "colour", "has no field"),
        ({"key": "x", "label": "l", "amount": "1", "save": "now"}, "save", "names a method"),
        ({"key": "x", "label": "l", "amount": "1", "pk": 3}, "pk", "names a property"),
        ({"key": "x", "label": "l", "amount": "1.234"}, "amount", "decimal places"),
        ({"key": "x", "label": "l" * 201, "amount": "1"}, "label", "at most 200"),
        ({"key": "x", "label": None, "amount": "1"}, "label", "cannot be null"),
        ({"key": "x", "label": "l", "amount": "1", "day": "2026-02-30"}, "day", "invalid date"),
        ({"key": "x", "label": "l", "amount": "1", "active": "maybe"}, "active", "True or False"),
        ({"label": "l", "amount": "1"}, "key", "missing lookup value"),
        ({"key": "", "label": "l", "amount": "1"}, "key", "missing lookup value"),
    ],
)
def test_invalid_rows_name_file_row_and_field(
    tmp_path: Path, fields: dict[str, Any], field: str, message: str
) -> None:
    path = write(
        tmp_path / "e.json", [entry(0), {"model": "testapp.fixtureentry", "fields": fields}]
    )
    with pytest.raises(FixtureError) as caught:
        run(entries_command(path))
    assert (caught.value.path, caught.value.row, caught.value.field) == (path, 1, field)
    assert message in str(caught.value)
    assert FixtureEntry.objects.count() == 0


def test_a_key_naming_a_method_or_property_is_rejected(tmp_path: Path) -> None:
    for name, kind in (("headline", "a method"), ("slug_title", "a property")):
        path = write(
            tmp_path / "a.json",
            [{"model": "testapp.fixturearticle", "fields": {"key": "k", name: "x"}}],
        )
        command = ImportArticles()
        command.fixture_path = path  # type: ignore[misc]
        with pytest.raises(FixtureError, match=f"'{name}' names {kind} of testapp.FixtureArticle"):
            run(command)
    assert FixtureArticle.objects.count() == 0


def test_a_duplicate_lookup_value_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(0), entry(1), entry(0, label="again")])
    with pytest.raises(
        FixtureError, match=r"row 2, field 'key': duplicate lookup value 'e-0' \(first in row 0\)"
    ):
        run(entries_command(path))
    assert FixtureEntry.objects.count() == 0


def test_a_duplicate_across_two_files_names_both(tmp_path: Path) -> None:
    first = write(tmp_path / "one.json", [entry(0)])
    second = write(tmp_path / "two.json", [entry(0)])
    command = entries_command(first)
    command.fixture_paths = [first, second]  # type: ignore[misc]
    with pytest.raises(FixtureError, match=f"first in row 0 of {first}"):
        run(command)


def test_a_row_for_another_model_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [{"model": "testapp.fixturetag", "fields": {"key": "x"}}])
    with pytest.raises(FixtureError, match=r"row 0: the row is for model 'testapp\.fixturetag'"):
        run(entries_command(path))


def test_invalid_json_is_an_error_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text('[\n{"fields": {"key": "a"}}\n{"fields": {}}]')
    with pytest.raises(FixtureError, match="line 3 column 1"):
        run(entries_command(path))


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="does not exist"):
        run(entries_command(tmp_path / "nope.json"))


def test_a_lookup_field_without_a_unique_constraint_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(0)])
    with pytest.raises(FixtureError, match=r"lookup field 'label' .* must be unique"):
        run(entries_command(path, lookup_field="label"))


# -- queries ---------------------------------------------------------------------------------


def count_queries(command: JsonFixtureUpsertCommand, *args: str) -> int:
    with CaptureQueriesContext(connections["default"]) as queries:
        run(command, *args)
    return len(queries)


#: Statements per staged batch that the query log sees: PostgreSQL stages through COPY, which
#: bypasses it; elsewhere one batched INSERT.
def staged_per_batch() -> int:
    return 0 if connection.vendor == "postgresql" else 1


def test_queries_grow_with_batches_not_rows(tmp_path: Path) -> None:
    batch = 50
    counts: dict[int, tuple[int, int, int]] = {}
    for rows in (200, 400):
        FixtureEntry.objects.all().delete()
        FixtureState.objects.all().delete()
        path = write(tmp_path / f"e{rows}.json", [entry(i) for i in range(rows)])
        created = count_queries(entries_command(path, batch_size=batch))
        write(path, [entry(i, label="changed") for i in range(rows)])
        updated = count_queries(entries_command(path, batch_size=batch))
        unchanged = count_queries(entries_command(path, batch_size=batch), "--force")
        assert FixtureEntry.objects.filter(label="changed").count() == rows
        counts[rows] = (created, updated, unchanged)
    # Per batch: the statement that stages it. The checks and writes that apply the staging
    # table are a fixed number of set-based statements, whatever the number of rows. Rows
    # whose source is unchanged since the last import (keep_edits) are not staged at all.
    grown = [large - small for small, large in zip(counts[200], counts[400], strict=True)]
    assert grown == [4 * staged_per_batch(), 4 * staged_per_batch(), 0]
    assert max(counts[200]) <= 45


def test_foreign_keys_and_many_to_many_are_resolved_per_batch(tmp_path: Path) -> None:
    run(ImportCategories())
    call_command("fixtures_import_tags", stdout=io.StringIO())
    news = FixtureCategory.objects.get(slug="news")

    def articles(n: int) -> list[dict[str, Any]]:
        return [
            {
                "model": "testapp.fixturearticle",
                "fields": {
                    "key": f"a-{i}",
                    "category": news.pk if i % 2 else ["guides"],
                    "tags": [["django"], ["python"]] if i % 3 else [],
                },
            }
            for i in range(n)
        ]

    counts = []
    for n in (100, 200):
        FixtureArticle.objects.all().delete()
        FixtureState.objects.all().delete()
        path = write(tmp_path / f"a{n}.json", articles(n))
        command = ImportArticles()
        command.fixture_path = path  # type: ignore[misc]
        command.batch_size = 50  # type: ignore[misc]
        command.natural_key_fields = {"category": ("slug",), "tags": ("name",)}  # type: ignore[misc]
        command.edit_policy = "overwrite"  # type: ignore[misc]
        counts.append(count_queries(command))
    # Twice the rows, twice the batches: the difference is the cost of the extra batches only.
    # Per batch: FK ids, FK natural keys, tag natural keys, and staging the batch. The links
    # are read and written once per 500 rows.
    per_two_batches = counts[1] - counts[0]
    assert per_two_batches == 2 * (3 + staged_per_batch())
    assert counts[0] - per_two_batches <= 60
    assert FixtureArticle.objects.get(key="a-3").category == news
    assert sorted(FixtureArticle.objects.get(key="a-2").tags.values_list("name", flat=True)) == [
        "django",
        "python",
    ]


# -- relations, pruning, pks ------------------------------------------------------------------


def test_natural_keys_fall_back_to_get_by_natural_key(tmp_path: Path) -> None:
    run(ImportCategories())
    path = write(
        tmp_path / "a.json",
        [{"model": "testapp.fixturearticle", "fields": {"key": "k", "category": ["guides"]}}],
    )
    command = ImportArticles()
    command.fixture_path = path  # type: ignore[misc]
    run(command)
    assert FixtureArticle.objects.get(key="k").category.slug == "guides"  # type: ignore[union-attr]


def test_an_unknown_natural_key_is_an_error(tmp_path: Path) -> None:
    run(ImportCategories())
    path = write(
        tmp_path / "a.json",
        [{"model": "testapp.fixturearticle", "fields": {"key": "k", "category": ["nope"]}}],
    )
    command = ImportArticles()
    command.fixture_path = path  # type: ignore[misc]
    with pytest.raises(
        FixtureError, match=r"row 0, field 'category': no testapp\.FixtureCategory with natural key"
    ):
        run(command)


def test_many_to_many_is_set_to_exactly_the_fixture_list(tmp_path: Path) -> None:
    call_command("fixtures_import_tags", stdout=io.StringIO())
    django, python, postgres = (
        FixtureTag.objects.get(name=n).pk for n in ("django", "python", "postgres")
    )
    path = write(
        tmp_path / "a.json",
        [{"model": "testapp.fixturearticle", "fields": {"key": "k", "tags": [django, python]}}],
    )
    command = ImportArticles()
    command.fixture_path = path  # type: ignore[misc]
    run(command)
    write(
        path,
        [{"model": "testapp.fixturearticle", "fields": {"key": "k", "tags": [python, postgres]}}],
    )
    result = run(command)
    assert (result.updated, result.unchanged) == (1, 0)
    assert set(FixtureArticle.objects.get(key="k").tags.values_list("pk", flat=True)) == {
        python,
        postgres,
    }
    result = run(command, "--force")
    assert (result.updated, result.unchanged) == (0, 1)


def test_prune_deletes_rows_absent_from_the_fixture(
    tmp_path: Path, received: list[dict[str, Any]]
) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(4)])
    run(entries_command(path, prune=True))
    write(path, [entry(0), entry(2)])
    result = run(entries_command(path, prune=True))
    assert (result.deleted, result.unchanged) == (2, 2)
    assert sorted(FixtureEntry.objects.values_list("key", flat=True)) == ["e-0", "e-2"]
    assert received[-1]["result"].deleted == 2


def test_without_prune_absent_rows_stay(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(3)])
    run(entries_command(path))
    write(path, [entry(0)])
    assert run(entries_command(path)).deleted == 0
    assert FixtureEntry.objects.count() == 3


def test_explicit_pks_are_kept_and_the_sequence_moves_past_them(tmp_path: Path) -> None:
    rows = [dict(entry(i), pk=1000 + i) for i in range(3)]
    path = write(tmp_path / "e.json", rows)
    run(entries_command(path))
    assert FixtureEntry.objects.get(key="e-2").pk == 1002
    created = FixtureEntry.objects.create(key="new", label="n", amount=1)
    assert created.pk > 1002


def test_a_pk_that_disagrees_with_the_existing_row_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [dict(entry(0), pk=5)])
    run(entries_command(path))
    write(path, [dict(entry(0), pk=6)])
    with pytest.raises(FixtureError, match="row 0, field 'pk': pk 6 does not match"):
        run(entries_command(path))


def test_a_pk_taken_by_another_row_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [dict(entry(0), pk=5)])
    run(entries_command(path))
    write(path, [dict(entry(1), pk=5)])
    with pytest.raises(FixtureError, match="pk 5 belongs to the existing row with key='e-0'"):
        run(entries_command(path))
    assert FixtureEntry.objects.get().key == "e-0"


def test_the_same_pk_twice_in_a_file_is_an_error_naming_both_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [dict(entry(0), pk=5), dict(entry(1), pk=5)])
    with pytest.raises(FixtureError, match=r"row 1, field 'pk': duplicate pk 5 \(first in row 0\)"):
        run(entries_command(path))
    assert not FixtureEntry.objects.exists()


def test_lookup_by_pk(tmp_path: Path) -> None:
    rows = [
        {"model": "testapp.fixtureentry", "pk": 10 + i, "fields": entry(i)["fields"]}
        for i in range(2)
    ]
    path = write(tmp_path / "e.json", rows)
    assert run(entries_command(path, lookup_field="pk")).created == 2
    rows[0]["fields"]["label"] = "renamed"
    write(path, rows)
    result = run(entries_command(path, lookup_field="pk"))
    assert (result.updated, result.unchanged) == (1, 1)
    assert FixtureEntry.objects.get(pk=10).label == "renamed"


def test_auto_now_is_set_on_write_and_ignored_in_the_diff(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.json",
        [{"model": "testapp.fixturearticle", "fields": {"key": "k", "title": "A"}}],
    )
    command = ImportArticles()
    command.fixture_path = path  # type: ignore[misc]
    run(command)
    first = FixtureArticle.objects.get(key="k")
    assert first.created_at is not None and first.updated_at is not None
    assert run(command, "--force").unchanged == 1
    write(path, [{"model": "testapp.fixturearticle", "fields": {"key": "k", "title": "B"}}])
    run(command)
    second = FixtureArticle.objects.get(key="k")
    assert second.updated_at > first.updated_at
    assert second.created_at == first.created_at


def test_skip_row_counts_skipped_rows(tmp_path: Path) -> None:
    class SkipOdd(ImportEntries):
        def skip_row(self, row: Any) -> bool:
            return bool(row.index % 2)

    path = write(tmp_path / "e.json", [entry(i) for i in range(5)])
    command = SkipOdd()
    command.fixture_path = path  # type: ignore[misc]
    result = run(command)
    assert (result.created, result.skipped) == (3, 2)


# -- dry run, signals, save() mode, output ----------------------------------------------------


def test_dry_run_reports_changes_and_writes_nothing(
    tmp_path: Path, received: list[dict[str, Any]]
) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(2)])
    run(entries_command(path))
    received.clear()
    write(path, [entry(0, label="new label"), entry(1), entry(2)])
    out = io.StringIO()
    result = run(entries_command(path), "--dry-run", stdout=out)
    assert (result.status, result.created, result.updated, result.unchanged) == ("dry-run", 1, 1, 1)
    text = out.getvalue()
    assert "would create key='e-2'" in text
    assert "would update key='e-0': label" in text
    assert FixtureEntry.objects.get(key="e-0").label == "Entry 0"
    assert not FixtureEntry.objects.filter(key="e-2").exists()
    assert received == []
    # The hash was not stored: the real run still imports.
    assert run(entries_command(path)).updated == 1


def test_fixture_imported_is_sent_on_commit_only(
    tmp_path: Path, received: list[dict[str, Any]]
) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(3)])

    class Rollback(Exception):
        pass

    def import_then_fail() -> None:
        with transaction.atomic():
            run(entries_command(path))
            assert received == []  # not before commit
            raise Rollback

    with pytest.raises(Rollback):
        import_then_fail()
    assert received == []
    assert FixtureEntry.objects.count() == 0

    with transaction.atomic():
        run(entries_command(path))
        assert received == []
    assert len(received) == 1
    assert received[0]["sender"] is FixtureEntry
    assert received[0]["using"] == "default"
    assert received[0]["result"].created == 3

    received.clear()
    run(entries_command(path), "--force")  # nothing written: nothing to announce
    assert received == []


def test_use_bulk_false_saves_each_row_with_signals(tmp_path: Path) -> None:
    class ImportCommented(JsonFixtureUpsertCommand):
        fixture_key = "testapp.commented"
        model_class = FixtureCommentedEntry
        use_bulk = False

    saved: list[bool] = []

    def on_save(sender: Any, created: bool, **kwargs: Any) -> None:
        saved.append(created)

    post_save.connect(on_save, sender=FixtureCommentedEntry)
    try:
        path = write(
            tmp_path / "c.json",
            [{"fields": {"key": "a", "text": "abc"}}, {"fields": {"key": "b", "text": "x"}}],
        )
        command = ImportCommented()
        command.fixture_path = path  # type: ignore[misc]
        assert run(command).created == 2
        write(
            path,
            [{"fields": {"key": "a", "text": "abcdef"}}, {"fields": {"key": "b", "text": "x"}}],
        )
        result = run(command)
    finally:
        post_save.disconnect(on_save, sender=FixtureCommentedEntry)
    assert (result.updated, result.unchanged) == (1, 1)
    assert saved == [True, True, False]
    assert FixtureCommentedEntry.objects.get(key="a").text_length == 6


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_is_drawn_only_on_a_terminal(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(30)])
    quiet = io.StringIO()
    run(entries_command(path), stderr=quiet)
    assert quiet.getvalue() == ""
    terminal = FakeTerminal()
    run(entries_command(path), "--force", stderr=terminal)
    assert "testapp.entries" in terminal.getvalue() and "rows" in terminal.getvalue()


def test_the_summary_is_printed_on_stdout(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(0)])
    out = io.StringIO()
    run(entries_command(path), stdout=out)
    assert (
        "testapp.entries: 1 created, 0 updated, 0 unchanged, 0 skipped, 0 deleted" in out.getvalue()
    )


def test_json_lines_files_import(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(json.dumps(entry(i)) for i in range(3)))
    assert run(entries_command(path)).created == 3


def test_case_insensitive_keys_on_mysql_match_the_existing_row(
    tmp_path: Path, db_vendor: str
) -> None:
    path = write(tmp_path / "e.json", [entry(0, key="Alpha")])
    run(entries_command(path, prune=True))
    write(path, [entry(0, key="alpha")])
    result = run(entries_command(path, prune=True))
    if db_vendor == "mysql":
        # The column's collation makes "Alpha" and "alpha" one key: the row is updated in place.
        assert (result.created, result.updated, result.deleted) == (0, 1, 0)
        assert list(FixtureEntry.objects.values_list("key", flat=True)) == ["alpha"]
    else:
        assert (result.created, result.deleted) == (1, 1)
        assert list(FixtureEntry.objects.values_list("key", flat=True)) == ["alpha"]


def test_two_concurrent_imports_of_one_fixture_run_one_after_the_other(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry(i) for i in range(300)])
    # A previous import left a state row: both runs lock it before reading any entries.
    FixtureState.objects.create(key="testapp.entries", content_hash="0" * 64)
    barrier = threading.Barrier(2)
    results: list[FixtureImportResult] = []
    errors: list[BaseException] = []

    def import_entries() -> None:
        try:
            barrier.wait()
            results.append(run(entries_command(path)))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=import_entries) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    created = sorted(result.created for result in results)
    assert created == [0, 300]
    second = next(result for result in results if result.created == 0)
    assert second.status == "unchanged" or second.unchanged == 300
    assert FixtureEntry.objects.count() == 300


@pytest.mark.parametrize(
    ("hold_bytes", "hold_rows", "spooled"),
    [(0, 20_000, [100, 100, 50]), (8 << 20, 20_000, []), (8 << 20, 150, [100, 50])],
    ids=["large-file-spools", "small-file-held", "rows-past-the-limit-spool"],
)
def test_small_imports_hold_rows_in_memory_large_ones_spool_with_the_same_result(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hold_bytes: int,
    hold_rows: int,
    spooled: list[int],
) -> None:
    import pickle

    from keel.fixtures.commands import spool as command_module

    spilled: list[int] = []
    dump = pickle.dump

    def counting_dump(batch: Any, *args: Any, **kwargs: Any) -> None:
        spilled.append(len(batch))
        dump(batch, *args, **kwargs)

    monkeypatch.setattr(command_module, "_HOLD_FILE_BYTES", hold_bytes)
    monkeypatch.setattr(command_module, "_HOLD_ROWS", hold_rows)
    monkeypatch.setattr(command_module.pickle, "dump", counting_dump)
    path = write(tmp_path / "e.json", [entry(i) for i in range(250)])
    result = run(entries_command(path, batch_size=100, use_bulk=False))
    assert (result.created, result.updated) == (250, 0)
    write(path, [entry(i, label="changed" if i % 2 else f"Entry {i}") for i in range(250)])
    result = run(entries_command(path, batch_size=100, use_bulk=False))
    assert (result.created, result.updated, result.unchanged) == (0, 125, 125)
    assert FixtureEntry.objects.get(key="e-249").amount == Decimal("249.50")
    assert FixtureEntry.objects.filter(label="changed").count() == 125
    # Over the size limit every batch goes through the spool; under it, the batches past the
    # row limit do. Either way they are written in file order, with the same result.
    assert spilled == spooled * 2
