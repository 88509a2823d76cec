"""Export: the database's rows written back to a command's fixture files, so an editor's
change can be committed; the files then import to "0 changed"."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import TextField
from django.db.models.functions import Cast

from keel.fixtures import FixtureImportResult, JsonFixtureUpsertCommand
from tests.testapp.models.fixtures import FixtureArticle, FixtureCategory, FixtureTag
from tests.testapp.models.site import SiteSettings

pytestmark = pytest.mark.django_db(transaction=True)


class ImportArticles(JsonFixtureUpsertCommand):
    fixture_key = "export.articles"
    model_class = FixtureArticle
    natural_key_fields = {"tags": ("name",)}


def article(key: str, **fields: Any) -> dict[str, Any]:
    return {"model": "testapp.fixturearticle", "fields": {"key": key, **fields}}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def command(*paths: Path, cls: type[JsonFixtureUpsertCommand] = ImportArticles) -> Any:
    instance = cls()
    instance.fixture_paths = list(paths)  # type: ignore[misc]
    return instance


def run(*paths: Path, cls: type[JsonFixtureUpsertCommand] = ImportArticles) -> FixtureImportResult:
    instance = command(*paths, cls=cls)
    call_command(instance, stdout=io.StringIO(), stderr=io.StringIO())
    assert instance.import_result is not None
    return instance.import_result


@pytest.fixture
def related() -> None:
    FixtureCategory.objects.create(slug="news", name="News")
    FixtureCategory.objects.create(slug="guides", name="Guides")
    for name in ("django", "python"):
        FixtureTag.objects.create(name=name)


@pytest.mark.usefixtures("related")
def test_export_writes_rows_by_lookup_without_ids_and_round_trips(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.json",
        [
            article(
                "welcome",
                title="Welcome",
                price="12.5",
                published="true",
                publish_date="2026-01-02",
                category=["news"],
                tags=[["python"], ["django"]],
            ),
            article("about", title="About us", category=["guides"]),
        ],
    )
    run(path)
    FixtureArticle.objects.filter(key="about").update(title="About keel")  # in the admin
    FixtureArticle.objects.create(key="contact", title="Contact")  # a row the file lacks
    assert command(path).export() == [path]
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert [row["fields"]["key"] for row in rows] == ["about", "contact", "welcome"]
    assert rows[2] == {
        "model": "testapp.fixturearticle",
        "fields": {
            "key": "welcome",
            "title": "Welcome",
            "price": "12.50",
            "published": True,
            "publish_date": "2026-01-02",
            "category": ["news"],
            "tags": [["django"], ["python"]],
        },
    }
    assert rows[0]["fields"]["title"] == "About keel"
    text = path.read_text(encoding="utf-8")
    assert '"pk"' not in text and '"id"' not in text and "created_at" not in text
    result = run(path)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 3)


@pytest.mark.usefixtures("related")
def test_export_is_stable_byte_for_byte(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", [article("b", title="B"), article("a", title="A")])
    run(path)
    assert command(path).export() == [path]
    first = path.read_bytes()
    before = path.stat().st_mtime_ns
    assert command(path).export() == []
    assert path.read_bytes() == first
    assert path.stat().st_mtime_ns == before
    run(path)
    assert command(path).export() == []
    assert path.read_bytes() == first


def test_each_row_goes_back_to_its_file_new_rows_to_the_last(tmp_path: Path) -> None:
    one = write(tmp_path / "one.json", [article("a", title="A")])
    two = tmp_path / "two.jsonl"
    two.write_text(json.dumps(article("b", title="B")) + "\n", encoding="utf-8")
    run(one, two)
    FixtureArticle.objects.create(key="c", title="C")
    command(one, two).export()
    assert [row["fields"]["key"] for row in json.loads(one.read_text())] == ["a"]
    lines = two.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["fields"]["key"] for line in lines] == ["b", "c"]


def test_export_through_keel_fixtures_then_check_passes(tmp_path: Path, settings: Any) -> None:
    settings.BASE_DIR = tmp_path
    data = Path(__file__).parent / "fixtures_data" / "categories.json"
    (tmp_path / "fixtures_data").mkdir()
    (tmp_path / "fixtures_data" / "categories.json").write_bytes(data.read_bytes())
    call_command("fixtures_import_categories", stdout=io.StringIO())
    FixtureCategory.objects.update(name="Renamed")
    out = io.StringIO()
    call_command("keel_fixtures", "export", "fixtures_import_categories", stdout=out)
    assert "wrote" in out.getvalue()
    rows = json.loads((tmp_path / "fixtures_data" / "categories.json").read_text())
    assert {row["fields"]["name"] for row in rows} == {"Renamed"}
    call_command("keel_fixtures", "check", "fixtures_import_categories", stdout=io.StringIO())


def test_a_new_file_gets_every_editable_field_one_row_per_line(tmp_path: Path) -> None:
    FixtureCategory.objects.create(slug="news", name="News")
    FixtureArticle.objects.create(key="b", title="B", category=FixtureCategory.objects.get())
    FixtureArticle.objects.create(key="a", title="A")
    path = tmp_path / "new" / "a.json"
    assert command(path).export() == [path]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == 4
    first = json.loads(lines[1].rstrip(","))
    assert list(first["fields"]) == [
        "key",
        "title",
        "body",
        "price",
        "published",
        "publish_date",
        "rank",
        "kind",
        "category",
        "tags",
    ]
    assert json.loads(lines[2])["fields"]["category"] == ["news"]
    assert run(path).unchanged == 2


def test_unknown_keys_and_compressed_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No fixture upsert command with key or name 'nope'"):
        call_command("keel_fixtures", "export", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="export takes the fixture keys"):
        call_command("keel_fixtures", "export", stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"export writes \.json, \.jsonl and \.ndjson files"):
        command(tmp_path / "a.json.gz").export()


class ImportSettings(JsonFixtureUpsertCommand):
    fixture_key = "export.settings"
    model_class = SiteSettings
    lookup_field = "pk"
    edit_policy = "overwrite"


def test_secrets_are_never_exported(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.json",
        [{"pk": 1, "fields": {"site_name": "Shop", "stripe_secret_key": "sk_live_123"}}],
    )
    run(path, cls=ImportSettings)
    assert SiteSettings.objects.get().stripe_secret_key == "sk_live_123"
    # Imported encrypted, like save() writes it: the table never holds the secret in clear.
    [(stored,)] = SiteSettings.objects.values_list(Cast("stripe_secret_key", TextField()))
    assert "sk_live" not in stored and stored.startswith("gAAAA")
    command(path, cls=ImportSettings).export()
    text = path.read_text(encoding="utf-8")
    assert "sk_live" not in text and "stripe_secret_key" not in text
    assert json.loads(text) == [
        {"model": "testapp.sitesettings", "pk": 1, "fields": {"site_name": "Shop"}}
    ]
    # The secret is still in the database after the exported file is imported.
    run(path, cls=ImportSettings)
    assert SiteSettings.objects.get().stripe_secret_key == "sk_live_123"


def test_keel_fixtures_export_and_check_name_upsert_commands_only() -> None:
    with pytest.raises(CommandError, match="No fixture upsert command with key or name"):
        call_command("keel_fixtures", "check", "fixtures_update_site_config", stdout=io.StringIO())
