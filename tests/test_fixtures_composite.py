"""Composite lookups: ``lookup_fields = ("key", "language")`` matches rows on several fields
covered together by one unique constraint, everywhere a single lookup field is used."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from keel.fixtures import FixtureError, FixtureImportResult, JsonFixtureUpsertCommand
from keel.models import FixtureState
from tests.testapp.management.commands.fixtures_import_contents import (
    Command as ImportContents,
)
from tests.testapp.models.fixtures import (
    FixtureCategory,
    FixtureContent,
    FixtureRegionPrice,
    FixtureTag,
)

pytestmark = pytest.mark.django_db(transaction=True)


def content(key: str, language: str | None = "", **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"key": key, "text": f"{key} [{language}]", **fields}
    if language is not None:
        values["language"] = language
    return {"model": "testapp.fixturecontent", "fields": values}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


def contents_command(path: Path, **attributes: Any) -> ImportContents:
    command = ImportContents()
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


def stored() -> dict[tuple[str, str], str]:
    return {(c.key, c.language): c.text for c in FixtureContent.objects.all()}


class ImportPrices(JsonFixtureUpsertCommand):
    fixture_key = "testapp.prices"
    model_class = FixtureRegionPrice
    lookup_fields = ("code", "region")
    fields_key = None


# -- matching and counters -------------------------------------------------------------------


def test_rows_are_matched_on_key_and_language_together(tmp_path: Path) -> None:
    rows = [content("greeting", ""), content("greeting", "fr"), content("farewell", "")]
    path = write(tmp_path / "c.json", rows)
    result = run(contents_command(path))
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    # The same key in another language is another row; "" is a language like any other.
    rows[1] = content("greeting", "fr", text="Salut")
    rows.append(content("greeting", "de"))
    write(path, rows)
    result = run(contents_command(path))
    assert (result.created, result.updated, result.unchanged) == (1, 1, 2)
    assert stored() == {
        ("greeting", ""): "greeting []",
        ("greeting", "fr"): "Salut",
        ("greeting", "de"): "greeting [de]",
        ("farewell", ""): "farewell []",
    }


def test_the_shipped_fixture_file_imports() -> None:
    result = run(ImportContents())
    assert (result.created, result.status) == (3, "imported")
    assert stored()[("greeting", "fr")] == "Bonjour"


def test_rows_of_the_batch_are_not_confused_with_their_neighbours(tmp_path: Path) -> None:
    # The batch read filters each field on its values (a superset); only exact pairs match.
    for key in ("a", "b"):
        for language in ("", "fr"):
            FixtureContent.objects.create(key=key, language=language, text="old")
    path = write(tmp_path / "c.json", [content("a", "", text="new"), content("b", "fr")])
    result = run(contents_command(path, batch_size=1))
    assert (result.created, result.updated, result.unchanged) == (0, 2, 0)
    assert stored() == {
        ("a", ""): "new",
        ("a", "fr"): "old",
        ("b", ""): "old",
        ("b", "fr"): "b [fr]",
    }


def test_a_dry_run_describes_changes_by_every_lookup_field(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [content("a", "fr")])
    run(contents_command(path))
    write(path, [content("a", "fr", text="changed"), content("a", "de")])
    out = io.StringIO()
    run(contents_command(path), "--dry-run", stdout=out)
    assert "would create key='a', language='de'" in out.getvalue()
    assert "would update key='a', language='fr': text" in out.getvalue()
    assert stored() == {("a", "fr"): "a [fr]"}


def test_prune_deletes_the_pairs_absent_from_the_fixture(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [content("a", ""), content("a", "fr"), content("b", "fr")])
    run(contents_command(path, prune=True))
    write(path, [content("a", ""), content("b", "fr")])
    out = io.StringIO()
    result = run(contents_command(path, prune=True), "--dry-run", stdout=out)
    assert "would delete key='a', language='fr'" in out.getvalue()
    result = run(contents_command(path, prune=True))
    assert (result.deleted, result.unchanged) == (1, 2)
    assert set(stored()) == {("a", ""), ("b", "fr")}


def test_many_to_many_is_set_on_new_and_existing_rows(tmp_path: Path) -> None:
    FixtureTag.objects.create(name="x")
    FixtureTag.objects.create(name="y")
    tag_ids = dict(FixtureTag.objects.values_list("name", "pk"))
    path = write(tmp_path / "c.json", [content("a", "fr", tags=[tag_ids["x"]]), content("a", "")])
    run(contents_command(path))
    row = FixtureContent.objects.get(key="a", language="fr")
    assert [t.name for t in row.tags.all()] == ["x"]
    write(path, [content("a", "fr", tags=[tag_ids["y"]]), content("a", "", tags=[tag_ids["x"]])])
    result = run(contents_command(path))
    assert result.updated == 2
    assert [t.name for t in row.tags.all()] == ["y"]
    assert [t.name for t in FixtureContent.objects.get(language="").tags.all()] == ["x"]


def test_save_per_row_works_with_a_composite_lookup(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [content("a", ""), content("a", "fr")])
    assert run(contents_command(path, use_bulk=False)).created == 2
    write(path, [content("a", "", text="new"), content("a", "fr")])
    result = run(contents_command(path, use_bulk=False))
    assert (result.updated, result.unchanged) == (1, 1)
    assert stored()[("a", "")] == "new"


def test_unique_together_and_a_foreign_key_part(tmp_path: Path) -> None:
    news = FixtureCategory.objects.create(slug="news")
    path = write(
        tmp_path / "p.json",
        [
            {"code": "std", "region": "eu", "amount": 1, "category": news.pk},
            {"code": "std", "region": "us", "amount": 2},
        ],
    )
    command = ImportPrices()
    command.fixture_path = path  # type: ignore[misc]
    assert run(command).created == 2
    write(path, [{"code": "std", "region": "eu", "amount": 5}, {"code": "std", "region": "us"}])
    result = run(command)
    assert (result.updated, result.unchanged) == (1, 1)
    assert dict(FixtureRegionPrice.objects.values_list("region", "amount")) == {"eu": 5, "us": 2}


# -- queries ---------------------------------------------------------------------------------


def count_queries(command: JsonFixtureUpsertCommand, *args: str) -> int:
    with CaptureQueriesContext(connections["default"]) as queries:
        run(command, *args)
    return len(queries)


def test_queries_grow_with_batches_not_rows(tmp_path: Path) -> None:
    batch = 50
    languages = ["", "fr", "de", "it"]
    counts: dict[int, tuple[int, int, int]] = {}
    for rows in (200, 400):
        FixtureContent.objects.all().delete()
        FixtureState.objects.all().delete()
        path = write(
            tmp_path / f"c{rows}.json",
            [content(f"k-{i // 4}", languages[i % 4]) for i in range(rows)],
        )
        created = count_queries(contents_command(path, batch_size=batch))
        write(
            path,
            [content(f"k-{i // 4}", languages[i % 4], text="changed") for i in range(rows)],
        )
        updated = count_queries(contents_command(path, batch_size=batch))
        unchanged = count_queries(contents_command(path, batch_size=batch), "--force")
        assert FixtureContent.objects.filter(text="changed").count() == rows
        counts[rows] = (created, updated, unchanged)
    # As with one lookup field: one statement per staged batch (COPY on PostgreSQL, which the
    # query log does not see), and a fixed number of set-based statements to apply them.
    per_batch = 0 if connection.vendor == "postgresql" else 1
    for small, large in zip(counts[200], counts[400], strict=True):
        assert large - small == 4 * per_batch
    assert max(counts[200]) <= 45


# -- bad input -------------------------------------------------------------------------------


def test_a_missing_part_is_an_error_naming_the_field(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [content("a", "fr"), content("b", None)])
    with pytest.raises(FixtureError, match=r"row 1, field 'language': missing lookup value"):
        run(contents_command(path))
    assert not FixtureContent.objects.exists()


def test_a_null_part_is_refused_even_on_a_nullable_field(tmp_path: Path) -> None:
    # A unique constraint never matches NULL: the row could never be found again.
    path = write(tmp_path / "p.json", [{"code": "std", "region": None}])
    command = ImportPrices()
    command.fixture_path = path  # type: ignore[misc]
    with pytest.raises(FixtureError, match=r"field 'region': null lookup value"):
        run(command)
    row = content("a", None)
    row["fields"]["language"] = None
    path = write(tmp_path / "c.json", [row])
    with pytest.raises(FixtureError, match=r"field 'language': .*cannot be null"):
        run(contents_command(path))
    assert not FixtureRegionPrice.objects.exists() and not FixtureContent.objects.exists()


def test_an_invalid_part_is_an_error_naming_the_field(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [content("a", "x" * 16)])
    with pytest.raises(FixtureError, match=r"row 0, field 'language': .* at most 15"):
        run(contents_command(path))


def test_a_duplicate_pair_is_an_error_naming_both_rows(tmp_path: Path) -> None:
    rows = [content("a", ""), content("a", "fr"), content("b", "fr"), content("a", "fr")]
    path = write(tmp_path / "c.json", rows)
    with pytest.raises(
        FixtureError,
        match=r"row 3: duplicate lookup value key='a', language='fr' \(first in row 1\)",
    ):
        run(contents_command(path))
    assert not FixtureContent.objects.exists()


def test_a_foreign_key_part_takes_an_id_not_a_natural_key(tmp_path: Path) -> None:
    news = FixtureCategory.objects.create(slug="news")

    class ImportByCategory(JsonFixtureUpsertCommand):
        fixture_key = "testapp.prices-by-category"
        model_class = FixtureRegionPrice
        lookup_fields = ("code", "category")
        fields_key = None

    command = ImportByCategory()
    path = write(tmp_path / "p.json", [{"code": "a", "category": ["news"]}])
    command.fixture_path = path  # type: ignore[misc]
    with pytest.raises(FixtureError, match=r"field 'category': a lookup field takes an id, not"):
        run(command)
    write(path, [{"code": "a", "category": news.pk, "amount": 3}])
    assert run(command).created == 1
    write(path, [{"code": "a", "category": news.pk, "amount": 4}])
    assert run(command).updated == 1
    assert FixtureRegionPrice.objects.get(code="a").amount == 4


def test_fields_not_unique_together_are_refused_at_first_use(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [content("a")])
    with pytest.raises(
        FixtureError,
        match=r"lookup fields 'key', 'text' of testapp.FixtureContent must be covered by one "
        r"unique constraint",
    ):
        run(contents_command(path, lookup_fields=("key", "text")))
    # One field of the pair is not unique on its own either.
    with pytest.raises(FixtureError, match=r"lookup field 'key' .* must be unique"):
        run(contents_command(path, lookup_fields=("key",)))
    with pytest.raises(FixtureError, match="is the primary key"):
        run(contents_command(path, lookup_fields=("id", "key")))
    assert not FixtureContent.objects.exists()


def test_setting_both_lookup_field_and_lookup_fields_is_an_error_at_class_definition() -> None:
    with pytest.raises(ImproperlyConfigured, match="sets both lookup_field and lookup_fields"):

        class Both(JsonFixtureUpsertCommand):
            lookup_field = "key"
            lookup_fields = ("key", "language")

    with pytest.raises(ImproperlyConfigured, match="sets both"):

        class Override(ImportContents):
            lookup_field = "key"


def test_setting_both_on_an_instance_is_an_error_at_first_use(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [content("a")])
    with pytest.raises(ImproperlyConfigured, match="sets both lookup_field and lookup_fields"):
        run(contents_command(path, lookup_field="key"))


@pytest.mark.parametrize("value", ["key", (), ("key", 3)])
def test_lookup_fields_must_be_a_tuple_of_names(value: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="lookup_fields is a non-empty tuple"):
        type("Bad", (JsonFixtureUpsertCommand,), {"lookup_fields": value, "__module__": __name__})


def test_the_hash_covers_every_lookup_field(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [content("a")])
    base = contents_command(path).compute_hash([path])
    assert contents_command(path).compute_hash([path]) == base
    assert contents_command(path, lookup_fields=("language", "key")).compute_hash([path]) != base
    assert "key,language" in contents_command(path).get_hash_parts()


# -- the get_lookup_value hook ---------------------------------------------------------------


class ImportDotted(ImportContents):
    """Rows carry ``"id": "greeting.fr"``: the lookup value comes from it."""

    fixture_key = "testapp.contents-dotted"
    fields_key = None

    def get_lookup_value(self, fields: dict[str, Any]) -> Any:
        key, _, language = str(fields.get("id", "")).partition(".")
        return (key, language)

    def get_defaults(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in fields.items() if name != "id"}


def test_get_lookup_value_returns_a_tuple_written_to_the_row(tmp_path: Path) -> None:
    command = ImportDotted()
    command.fixture_path = write(  # type: ignore[misc]
        tmp_path / "c.json", [{"id": "greeting.fr", "text": "Bonjour"}, {"id": "greeting"}]
    )
    assert run(command).created == 2
    assert stored() == {("greeting", "fr"): "Bonjour", ("greeting", ""): ""}


def test_get_lookup_value_returning_a_scalar_is_an_error(tmp_path: Path) -> None:
    class Scalar(ImportDotted):
        def get_lookup_value(self, fields: dict[str, Any]) -> Any:
            return fields["id"]

    command = Scalar()
    command.fixture_path = write(tmp_path / "c.json", [{"id": "greeting"}])  # type: ignore[misc]
    with pytest.raises(FixtureError, match=r"a composite lookup takes a tuple of 2 values"):
        run(command)


# -- primary keys ----------------------------------------------------------------------------


def test_a_pk_that_disagrees_with_the_existing_pair_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [dict(content("a", "fr"), pk=5), dict(content("b"), pk=6)])
    run(contents_command(path))
    assert FixtureContent.objects.get(key="a").pk == 5
    write(path, [dict(content("a", "fr"), pk=7)])
    with pytest.raises(FixtureError, match=r"pk 7 does not match .* key='a', language='fr'"):
        run(contents_command(path))
    write(path, [dict(content("c", "fr"), pk=6)])
    with pytest.raises(FixtureError, match=r"pk 6 belongs to the existing row with key='b', "):
        run(contents_command(path))


# -- MySQL/MariaDB collations ----------------------------------------------------------------


def test_case_insensitive_pairs_on_mysql_match_the_existing_row(
    tmp_path: Path, db_vendor: str
) -> None:
    path = write(tmp_path / "c.json", [content("Alpha", "EN")])
    run(contents_command(path, prune=True))
    write(path, [content("alpha", "en ")])
    result = run(contents_command(path, prune=True))
    if db_vendor == "mysql":
        # The collation makes ("Alpha", "EN") and ("alpha", "en ") one pair: updated in place.
        assert (result.created, result.updated, result.deleted) == (0, 1, 0)
        assert FixtureContent.objects.count() == 1
    else:
        assert (result.created, result.updated, result.deleted) == (1, 0, 1)
        assert list(FixtureContent.objects.values_list("key", "language")) == [("alpha", "en ")]


def test_case_variants_of_one_pair_are_duplicates_on_mysql_only(
    tmp_path: Path, db_vendor: str
) -> None:
    path = write(tmp_path / "c.json", [content("a", "fr"), content("A", "FR")])
    if db_vendor == "mysql":
        with pytest.raises(FixtureError, match=r"row 1: duplicate lookup value key='A'"):
            run(contents_command(path))
        assert not FixtureContent.objects.exists()
    else:
        assert run(contents_command(path)).created == 2
