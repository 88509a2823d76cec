"""Drift check: ``keel_fixtures check`` compares the database with the files row by row and
field by field, prints the differences and exits 1 when there are any."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from keel.fixtures import FixtureError, JsonFixtureUpsertCommand
from keel.fixtures.results import FixtureDifference
from keel.models import FixtureRowState
from tests.testapp.models.fixtures import FixtureCategory, FixtureEntry

pytestmark = pytest.mark.django_db(transaction=True)


class ImportEntries(JsonFixtureUpsertCommand):
    fixture_key = "drift.entries"
    model_class = FixtureEntry


def entry(key: str, label: str = "Label", amount: str = "1.00", **fields: Any) -> dict[str, Any]:
    return {"fields": {"key": key, "label": label, "amount": amount, **fields}}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def command(path: Path) -> ImportEntries:
    instance = ImportEntries()
    instance.fixture_path = path  # type: ignore[misc]
    return instance


def test_differences_are_listed_row_by_row_and_field_by_field(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a"), entry("b", day="2026-01-02"), entry("c")])
    call_command(command(path), stdout=io.StringIO())
    assert command(path).find_drift() == []
    FixtureEntry.objects.filter(key="a").update(label="Edited", active=False)
    FixtureEntry.objects.filter(key="b").update(day=None)
    FixtureEntry.objects.filter(key="c").delete()
    FixtureEntry.objects.create(key="z", label="Extra", amount=1)
    state = list(FixtureRowState.objects.values_list("object_pk", "written"))
    drift = command(path).find_drift()
    # "active" is not named by the file: not a difference.
    assert drift == [
        FixtureDifference(path, 0, "key='a'", "label", "Edited", "Label"),
        FixtureDifference(path, 1, "key='b'", "day", None, "2026-01-02"),
        FixtureDifference(path, 2, "key='c'", None),
        FixtureDifference(None, None, "key='z'", None),
    ]
    assert (
        str(drift[0]) == f"{path}, row 0 (key='a'), field 'label': database 'Edited', file 'Label'"
    )
    assert str(drift[2]) == f"{path}, row 2 (key='c'): only in the file"
    assert str(drift[3]) == "key='z': only in the database"
    # Nothing was written by the check.
    assert sorted(FixtureEntry.objects.values_list("key", flat=True)) == ["a", "b", "z"]
    assert list(FixtureRowState.objects.values_list("object_pk", "written")) == state


def test_a_case_only_difference_is_a_difference(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", "cafe")])
    call_command(command(path), stdout=io.StringIO())
    FixtureEntry.objects.filter(key="a").update(label="Café")
    [difference] = command(path).find_drift()
    assert (difference.field, difference.database_value) == ("label", "Café")


def test_check_exits_1_on_a_difference_and_0_after_export(tmp_path: Path, settings: Any) -> None:
    settings.BASE_DIR = tmp_path
    (tmp_path / "fixtures_data").mkdir()
    path = write(
        tmp_path / "fixtures_data" / "categories.json",
        [{"fields": {"slug": "news", "name": "News"}}],
    )
    call_command("fixtures_import_categories", stdout=io.StringIO())
    out = io.StringIO()
    call_command("keel_fixtures", "check", "testapp.categories", stdout=out)
    assert "testapp.categories: database and files agree." in out.getvalue()
    FixtureCategory.objects.filter(slug="news").update(name="Headlines")
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("keel_fixtures", "check", "testapp.categories", stdout=out)
    assert caught.value.returncode == 1
    assert (
        f"{path}, row 0 (slug='news'), field 'name': database 'Headlines', file 'News'"
        in out.getvalue()
    )
    call_command("keel_fixtures", "export", "testapp.categories", stdout=io.StringIO())
    call_command("keel_fixtures", "check", "testapp.categories", stdout=io.StringIO())
    result = call_command("fixtures_import_categories", stdout=io.StringIO())
    assert result is None
    assert FixtureCategory.objects.get().name == "Headlines"


def test_check_exit_status_from_the_command_line(tmp_path: Path) -> None:
    """The status a deploy pipeline sees: 1 with a difference, 0 without."""
    database = connection.settings_dict["NAME"]
    (tmp_path / "fixtures_data").mkdir()
    write(
        tmp_path / "fixtures_data" / "categories.json",
        [{"fields": {"slug": "news", "name": "News"}}],
    )
    script = (
        "import sys, django\n"
        "from django.conf import settings\n"
        "import tests.settings as base\n"
        "base.DATABASES['default']['NAME'] = sys.argv[1]\n"
        "base.BASE_DIR = __import__('pathlib').Path(sys.argv[2])\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(['manage.py', *sys.argv[3:]])\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(Path.cwd())}

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script, str(database), str(tmp_path), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    assert manage("fixtures_import_categories").returncode == 0
    assert manage("keel_fixtures", "check", "testapp.categories").returncode == 0
    FixtureCategory.objects.filter(slug="news").update(name="Headlines")
    failed = manage("keel_fixtures", "check", "testapp.categories")
    assert failed.returncode == 1, failed.stderr
    assert "field 'name': database 'Headlines', file 'News'" in failed.stdout
    assert manage("keel_fixtures", "export", "testapp.categories").returncode == 0
    assert manage("keel_fixtures", "check", "testapp.categories").returncode == 0


def test_a_file_that_cannot_be_imported_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a", amount="lots")])
    with pytest.raises(FixtureError, match="row 0, field 'amount'"):
        command(path).find_drift()
    with pytest.raises(FixtureError, match="does not exist"):
        command(tmp_path / "missing.json").find_drift()


def test_commands_saving_row_by_row_are_checked_too(tmp_path: Path) -> None:
    path = write(tmp_path / "e.json", [entry("a")])
    saving = command(path)
    saving.use_bulk = False  # type: ignore[misc]
    call_command(saving, stdout=io.StringIO())
    assert saving.find_drift() == []
    FixtureEntry.objects.filter(key="a").update(label="Edited")
    assert [d.field for d in saving.find_drift()] == ["label"]
