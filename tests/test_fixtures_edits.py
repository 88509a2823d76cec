"""Edit policies: an import never silently reverts a field an editor changed since the last
import (keep_edits); overwrite lets the file win; create_only never touches existing rows."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from keel.fixtures import FixtureImportResult, JsonFixtureUpsertCommand
from keel.fixtures.admin import FixtureEditsAdminMixin
from keel.fixtures.edits import shipped_differences
from keel.models import FixtureRowState
from tests.testapp.models.fixtures import FixtureArticle, FixtureBook, FixtureEntry, FixtureTag
from tests.testapp.models.site import SiteSettings

pytestmark = pytest.mark.django_db(transaction=True)


class ImportEntries(JsonFixtureUpsertCommand):
    fixture_key = "entries"
    model_class = FixtureEntry
    lookup_field = "key"


def entry(key: str, label: str = "Label", amount: str = "1.00", **fields: Any) -> dict[str, Any]:
    return {"fields": {"key": key, "label": label, "amount": amount, **fields}}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def run(path: Path, *args: str, **attributes: Any) -> tuple[FixtureImportResult, str]:
    command = ImportEntries()
    command.fixture_path = path  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(command, name, value)
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    assert command.import_result is not None
    return command.import_result, out.getvalue()


def stored(field: str = "label") -> dict[str, Any]:
    return dict(FixtureEntry.objects.values_list("key", field))


def test_an_edited_field_survives_an_import_that_changed_another_field(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", "Open 9-17"), entry("b")])
    run(path)
    FixtureEntry.objects.filter(key="a").update(label="Open 8-18")  # an editor, in the admin
    write(path, [entry("a", "Open 9-17", "2.00"), entry("b")])
    result, _ = run(path)
    assert (result.updated, result.unchanged, result.conflicts) == (1, 1, ())
    assert stored() == {"a": "Open 8-18", "b": "Label"}
    assert stored("amount") == {"a": Decimal("2.00"), "b": Decimal("1.00")}
    # The edit stays an edit: a later change of the file's other fields still keeps it.
    write(path, [entry("a", "Open 9-17", "3.00"), entry("b")])
    result, _ = run(path)
    assert stored() == {"a": "Open 8-18", "b": "Label"}
    assert stored("amount")["a"] == Decimal("3.00")


def test_the_default_overwrite_policy_reverts_the_edit(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", "Open 9-17")])
    run(path, edit_policy="overwrite")
    FixtureEntry.objects.filter(key="a").update(label="Open 8-18")
    write(path, [entry("a", "Open 9-17", "2.00")])
    result, _ = run(path, edit_policy="overwrite")
    assert result.updated == 1
    assert stored() == {"a": "Open 9-17"}
    assert not FixtureRowState.objects.exists()


def test_a_field_changed_by_the_editor_and_the_file_is_a_conflict(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", "Open 9-17"), entry("b")])
    run(path)
    FixtureEntry.objects.filter(key="a").update(label="Open 8-18")
    write(path, [entry("a", "Open 10-16"), entry("b", "Other")])
    result, out = run(path)
    assert stored() == {"a": "Open 8-18", "b": "Other"}
    assert (result.updated, result.unchanged) == (1, 1)
    [conflict] = result.conflicts
    assert (conflict.path, conflict.row, conflict.key, conflict.field) == (
        path,
        0,
        "key='a'",
        "label",
    )
    assert (conflict.editor_value, conflict.file_value) == ("Open 8-18", "Open 10-16")
    assert "1 conflicts" in out
    assert "field 'label': kept the editor's 'Open 8-18', the file has 'Open 10-16'" in out


def test_a_case_only_edit_is_an_edit(tmp_path: Path) -> None:
    """MySQL's collation folds case: the comparison is byte for byte anyway."""
    path = write(tmp_path / "e.json", [entry("a", "cafe")])
    run(path)
    FixtureEntry.objects.filter(key="a").update(label="Café")
    write(path, [entry("a", "cafe", "2.00")])
    run(path)
    assert stored() == {"a": "Café"}


def test_a_field_set_to_null_by_the_editor_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", day="2026-01-02")])
    run(path)
    FixtureEntry.objects.filter(key="a").update(day=None)
    write(path, [entry("a", amount="2.00", day="2026-01-02")])
    run(path)
    assert stored("day") == {"a": None}
    write(path, [entry("a", amount="2.00", day="2026-03-04")])
    result, _ = run(path)
    assert [(c.field, c.editor_value, c.file_value) for c in result.conflicts] == [
        ("day", None, "2026-03-04")
    ]


def test_overwrite_edits_applies_the_file_and_keeps_remembering(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", "Open 9-17")])
    run(path)
    FixtureEntry.objects.filter(key="a").update(label="Open 8-18")
    write(path, [entry("a", "Open 10-16")])
    run(path)
    assert stored() == {"a": "Open 8-18"}
    # Same file, hash current: --overwrite-edits imports anyway.
    result, _ = run(path, "--overwrite-edits")
    assert (result.updated, result.conflicts) == (1, ())
    assert stored() == {"a": "Open 10-16"}
    FixtureEntry.objects.filter(key="a").update(label="Open 7-19")
    write(path, [entry("a", "Open 10-16", "5.00")])
    run(path)
    assert stored() == {"a": "Open 7-19"}


def test_the_first_import_under_keep_edits_applies_the_file_then_remembers(
    tmp_path: Path,
) -> None:
    """Rows imported under another policy (or created outside imports) have no memory yet:
    the file's values are written, as before, and protected from the next import on."""
    path = write(tmp_path / "e.json", [entry("a", "Open 9-17"), entry("b")])
    run(path, edit_policy="overwrite")
    FixtureEntry.objects.filter(key="a").update(label="Open 8-18")
    FixtureEntry.objects.create(key="c", label="Made in the admin", amount=5)
    write(path, [entry("a", "Open 9-17"), entry("b", amount="2.00"), entry("c", "Shipped")])
    result, _ = run(path)
    assert (result.updated, result.conflicts) == (3, ())
    assert stored() == {"a": "Open 9-17", "b": "Label", "c": "Shipped"}
    FixtureEntry.objects.filter(key="c").update(label="Edited")
    write(path, [entry("a", "Open 9-17"), entry("b", amount="2.00"), entry("c", "Shipped 2")])
    result, _ = run(path)
    assert stored()["c"] == "Edited"
    assert [(c.key, c.field) for c in result.conflicts] == [("key='c'", "label")]


def test_create_only_never_updates(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", "First")])
    run(path, edit_policy="create_only")
    write(path, [entry("a", "Changed", "9.00"), entry("b", "New")])
    result, _ = run(path, edit_policy="create_only")
    assert (result.created, result.updated, result.unchanged) == (1, 0, 1)
    assert stored() == {"a": "First", "b": "New"}
    assert stored("amount")["a"] == Decimal("1.00")


def test_create_only_leaves_many_to_many_lists_of_existing_rows(tmp_path: Path) -> None:
    FixtureTag.objects.create(name="x")
    FixtureTag.objects.create(name="y")

    class ImportArticles(JsonFixtureUpsertCommand):
        fixture_key = "articles"
        model_class = FixtureArticle
        natural_key_fields = {"tags": ("name",)}
        edit_policy = "create_only"

    def import_articles(rows: list[dict[str, Any]]) -> None:
        command = ImportArticles()
        command.fixture_path = write(tmp_path / "a.json", rows)  # type: ignore[misc]
        call_command(command, stdout=io.StringIO())

    import_articles([{"fields": {"key": "a", "tags": [["x"]]}}])
    import_articles(
        [{"fields": {"key": "a", "tags": [["y"]]}}, {"fields": {"key": "b", "tags": [["y"]]}}]
    )
    tags = {a.key: [t.name for t in a.tags.all()] for a in FixtureArticle.objects.all()}
    assert tags == {"a": ["x"], "b": ["y"]}


def test_the_policy_is_a_command_option(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", "First")])
    run(path)
    FixtureEntry.objects.filter(key="a").update(label="Edited")
    write(path, [entry("a", "Second")])
    run(path, "--edit-policy", "overwrite")
    assert stored() == {"a": "Second"}


def test_a_failed_import_remembers_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a")])
    run(path)
    before = list(FixtureRowState.objects.values_list("written", flat=True))
    write(path, [entry("a", "Changed"), entry("b", amount="not a number")])
    with pytest.raises(CommandError):
        run(path)
    assert list(FixtureRowState.objects.values_list("written", flat=True)) == before
    assert stored() == {"a": "Label"}


def test_unknown_policies_and_saved_imports_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a")])
    with pytest.raises(ImproperlyConfigured, match="edit_policy is one of"):
        run(path, edit_policy="merge")
    with pytest.raises(ImproperlyConfigured, match="needs use_bulk = True"):
        run(path, edit_policy="keep_edits", use_bulk=False)
    with pytest.raises(CommandError, match="--overwrite-edits applies to the keep_edits"):
        run(path, "--overwrite-edits", edit_policy="overwrite")
    # A command saving row by row overwrites by default.
    run(path, use_bulk=False)
    assert stored() == {"a": "Label"}


def test_keep_edits_adds_statements_per_import_not_per_row(tmp_path: Path) -> None:
    """The three-way comparison runs in the database: as many statements for 400 rows as for
    100, whatever the policy."""

    def queries(rows: int, policy: str) -> int:
        FixtureEntry.objects.all().delete()
        FixtureRowState.objects.all().delete()
        path = write(tmp_path / "e.json", [entry(f"k{i}") for i in range(rows)])
        run(path, "--force", edit_policy=policy, batch_size=rows)
        FixtureEntry.objects.filter(key__in=["k1", "k2"]).update(label="Edited")
        write(path, [entry(f"k{i}", "New", "2.00") for i in range(rows)])
        with CaptureQueriesContext(connections["default"]) as captured:
            result, _ = run(path, "--force", edit_policy=policy, batch_size=rows)
        assert result.updated == rows
        return len(captured)

    keep = queries(100, "keep_edits")
    assert queries(400, "keep_edits") == keep
    assert stored()["k1"] == "Edited"
    overwrite = queries(100, "overwrite")
    assert queries(400, "overwrite") == overwrite
    # Read the digests of unchanged rows, mark, read the conflicts, keep the edits, remember
    # (update, insert); MySQL reads the collation of the row states' key column once.
    assert keep - overwrite <= 6 + (connection.vendor == "mysql")


class EntryAdmin(FixtureEditsAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    pass


def test_the_admin_shows_which_fields_differ_from_the_shipped_fixture(tmp_path: Path) -> None:
    path = write(
        tmp_path / "e.json",
        [entry("a", "Open 9-17", day="2026-01-02"), entry("b", day=None), entry("c")],
    )
    run(path)
    FixtureEntry.objects.filter(key="a").update(label="Open 8-18", day=None, active=False)
    FixtureEntry.objects.filter(key="b").update(day=date(2026, 5, 5))
    edited = FixtureEntry.objects.get(key="a")
    # "active" is not in the file: keel never wrote it, so it is no difference.
    assert shipped_differences(edited) == [("label", "Open 9-17"), ("day", "2026-01-02")]
    assert shipped_differences(FixtureEntry.objects.get(key="b")) == [("day", None)]
    assert shipped_differences(FixtureEntry.objects.get(key="c")) == []
    assert shipped_differences(FixtureEntry.objects.create(key="d", label="x", amount=1)) == []

    model_admin = EntryAdmin(FixtureEntry, admin.AdminSite())
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    request = RequestFactory().get("/")
    request.user = user
    assert "shipped_fixture_differences" in model_admin.get_readonly_fields(request, edited)
    assert "shipped_fixture_differences" not in model_admin.get_readonly_fields(request, None)
    # The change page shows the read-only field (the admin lists readonly fields in its form).
    assert "shipped_fixture_differences" in model_admin.get_fields(request, edited)
    html = str(model_admin.shipped_fixture_differences(edited))
    assert html == (
        "<ul><li><strong>label</strong>: shipped &#x27;Open 9-17&#x27;</li>"
        "<li><strong>day</strong>: shipped &#x27;2026-01-02&#x27;</li></ul>"
    )
    html = str(model_admin.shipped_fixture_differences(FixtureEntry.objects.get(key="b")))
    assert html == "<ul><li><strong>day</strong>: shipped empty (NULL)</li></ul>"
    html = str(model_admin.shipped_fixture_differences(FixtureEntry.objects.get(key="c")))
    assert html == "No field differs from the shipped fixture."


def test_rows_of_a_tree_created_in_one_import_are_remembered_as_linked(tmp_path: Path) -> None:
    class ImportBooks(JsonFixtureUpsertCommand):
        fixture_key = "books"
        model_class = FixtureBook

    def books(parent_title: str) -> Path:
        rows = [
            {"fields": {"key": "child", "title": "Child", "parent": ["root"]}},
            {"fields": {"key": "root", "title": parent_title}},
        ]
        return write(tmp_path / "b.json", rows)

    def import_books(*args: str) -> FixtureImportResult:
        command = ImportBooks()
        command.fixture_path = tmp_path / "b.json"  # type: ignore[misc]
        call_command(command, *args, stdout=io.StringIO())
        assert command.import_result is not None
        return command.import_result

    books("Root")
    assert import_books().created == 2
    result = import_books("--force")
    assert (result.updated, result.unchanged, result.conflicts) == (0, 2, ())
    child = FixtureBook.objects.get(key="child")
    assert child.parent is not None and child.parent.key == "root"
    FixtureBook.objects.filter(key="child").update(parent=None)  # an editor detaches it
    books("Root 2")
    result = import_books()
    assert (result.updated, result.conflicts) == (1, ())
    assert FixtureBook.objects.get(key="child").parent is None


def test_create_only_leaves_references_of_existing_rows(tmp_path: Path) -> None:
    class ImportBooks(JsonFixtureUpsertCommand):
        fixture_key = "books"
        model_class = FixtureBook
        edit_policy = "create_only"

    FixtureBook.objects.create(key="child", title="Child")
    command = ImportBooks()
    command.fixture_path = write(  # type: ignore[misc]
        tmp_path / "b.json",
        [
            {"fields": {"key": "child", "title": "Child", "parent": ["root"]}},
            {"fields": {"key": "root", "title": "Root"}},
        ],
    )
    call_command(command, stdout=io.StringIO())
    assert FixtureBook.objects.get(key="child").parent is None
    assert FixtureBook.objects.filter(key="root").exists()


def test_a_dry_run_remembers_nothing_and_shows_the_conflict(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", "First")])
    run(path)
    before = list(FixtureRowState.objects.values_list("written", flat=True))
    FixtureEntry.objects.filter(key="a").update(label="Edited")
    write(path, [entry("a", "Second", "2.00")])
    result, out = run(path, "--dry-run")
    assert result.status == "dry-run"
    assert [(c.field, c.editor_value, c.file_value) for c in result.conflicts] == [
        ("label", "Edited", "Second")
    ]
    assert "conflict:" in out
    assert list(FixtureRowState.objects.values_list("written", flat=True)) == before
    assert stored("amount")["a"] == Decimal("1.00")


def test_many_to_many_lists_follow_the_file_under_keep_edits(tmp_path: Path) -> None:
    FixtureTag.objects.create(name="x")
    FixtureTag.objects.create(name="y")

    class ImportArticles(JsonFixtureUpsertCommand):
        fixture_key = "articles"
        model_class = FixtureArticle
        natural_key_fields = {"tags": ("name",)}

    command = ImportArticles()
    command.fixture_path = write(  # type: ignore[misc]
        tmp_path / "a.json", [{"fields": {"key": "a", "tags": [["x"]]}}]
    )
    call_command(command, stdout=io.StringIO())
    article = FixtureArticle.objects.get(key="a")
    article.tags.set([FixtureTag.objects.get(name="y")])
    call_command(command, "--force", stdout=io.StringIO())
    assert [tag.name for tag in article.tags.all()] == ["x"]


def test_pruned_rows_are_forgotten(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a"), entry("b")])
    run(path, prune=True)
    assert FixtureRowState.objects.count() == 2
    write(path, [entry("a")])
    result, _ = run(path, prune=True)
    assert result.deleted == 1
    pk = FixtureEntry.objects.get(key="a").pk
    assert list(FixtureRowState.objects.values_list("object_pk", flat=True)) == [str(pk)]


def test_a_wide_row_of_every_field_type_keeps_its_edits(tmp_path: Path) -> None:
    """49 fields (memory built in chunks), JSON, files, UUIDs, decimals: an export, a first
    import that remembers, an edit kept while another field changes."""

    class ImportSettings(JsonFixtureUpsertCommand):
        fixture_key = "settings"
        model_class = SiteSettings
        lookup_field = "pk"

    SiteSettings.objects.update_or_create(
        pk=1, defaults={"site_name": "Shop", "extra_config": {"a": [1, 2]}}
    )
    path = tmp_path / "s.json"
    command = ImportSettings()
    command.fixture_path = path  # type: ignore[misc]
    command.export()
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert len(rows[0]["fields"]) == 49

    def import_settings(**changes: Any) -> FixtureImportResult:
        rows[0]["fields"].update(changes)
        write(path, rows)
        command = ImportSettings()
        command.fixture_path = path  # type: ignore[misc]
        call_command(command, stdout=io.StringIO())
        assert command.import_result is not None
        return command.import_result

    assert import_settings(tagline="One").updated == 1
    assert len(FixtureRowState.objects.get().written) == 49
    SiteSettings.objects.filter(pk=1).update(site_name="Edited", extra_config={"b": 1})
    result = import_settings(tagline="Two")
    assert (result.updated, result.conflicts) == (1, ())
    stored_settings = SiteSettings.objects.get()
    assert (stored_settings.site_name, stored_settings.tagline) == ("Edited", "Two")
    assert stored_settings.extra_config == {"b": 1}
    result = import_settings(site_name="Shop 2", extra_config={"c": 2})
    assert sorted((c.field, c.file_value) for c in result.conflicts)[1] == ("site_name", "Shop 2")
    assert sorted(c.field for c in result.conflicts) == ["extra_config", "site_name"]
    assert SiteSettings.objects.get().site_name == "Edited"
