"""Every refusal is a FixtureError naming the file, row and field, never a raw database or
Python error; values whose comparison could flip are refused or settle on the first import."""

from __future__ import annotations

import io
import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

from keel.fixtures import (
    FixtureError,
    FixtureImportResult,
    JsonFixtureUpsertCommand,
    SingletonFixtureUpdateCommand,
)
from keel.models import FixtureState
from tests.testapp.models.fixtures import FixtureBook, FixtureEntry, FixtureSiteConfig

pytestmark = pytest.mark.django_db(transaction=True)


class ImportBooks(JsonFixtureUpsertCommand):
    fixture_key = "books"
    model_class = FixtureBook
    lookup_field = "key"


class ImportEntries(JsonFixtureUpsertCommand):
    fixture_key = "entries"
    model_class = FixtureEntry
    lookup_field = "key"


class UpdateSiteConfig(SingletonFixtureUpdateCommand):
    fixture_key = "site-config"
    model_class = FixtureSiteConfig


def book(key: str, **fields: Any) -> dict[str, Any]:
    return {"model": "testapp.fixturebook", "fields": {"key": key, "title": key, **fields}}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def run(
    command_class: type[JsonFixtureUpsertCommand | SingletonFixtureUpdateCommand],
    path: Path,
    *args: str,
) -> FixtureImportResult:
    command = command_class()
    command.fixture_path = path  # type: ignore[misc]
    call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert command.import_result is not None
    return command.import_result


# -- concurrency -----------------------------------------------------------------------------


def test_two_first_imports_of_one_key_serialize_and_the_second_skips(tmp_path: Path) -> None:
    rows = [
        {"fields": {"key": f"e-{i}", "label": f"Entry {i}", "amount": f"{i}.50"}}
        for i in range(300)
    ]
    path = write(tmp_path / "e.json", rows)
    assert not FixtureState.objects.exists()  # never imported: no state row to lock
    barrier = threading.Barrier(2)
    results: list[FixtureImportResult] = []
    errors: list[BaseException] = []

    def first_import() -> None:
        try:
            barrier.wait()
            results.append(run(ImportEntries, path))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_import) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(result.status for result in results) == ["imported", "unchanged"]
    assert next(r for r in results if r.status == "imported").created == 300
    assert FixtureEntry.objects.count() == 300
    assert FixtureState.objects.count() == 1


# -- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_the_reader_refuses_nan_and_infinity(tmp_path: Path, text: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(
        '[{"fields": {"key": "a", "title": "a"}},\n {"fields": {"key": "b", "title": "b", '
        f'"weight": {text}}}}}]',
        encoding="utf-8",
    )
    with pytest.raises(FixtureError, match=rf"line 2 .*row 1: invalid JSON: {text} is not JSON"):
        run(ImportBooks, path)
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(f'{{"fields": {{"key": "a", "title": "a", "weight": {text}}}}}\n')
    with pytest.raises(FixtureError, match=rf"line 1, row 0: invalid JSON: {text} is not JSON"):
        run(ImportBooks, jsonl)
    assert not FixtureBook.objects.exists()


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity"])
def test_a_float_field_refuses_non_finite_strings(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "b.json", [book("a", weight=text)])
    with pytest.raises(FixtureError, match=r"row 0, field 'weight': .* not a finite number"):
        run(ImportBooks, path)


def test_a_json_number_for_a_decimal_field_is_stored_as_loaddata_stores_it(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "b.json", [book("a", price=12.1), book("b", price=7)])
    assert run(ImportBooks, path).created == 2
    assert FixtureBook.objects.get(key="a").price == Decimal("12.10")
    assert FixtureBook.objects.get(key="b").price == Decimal("7.00")
    assert run(ImportBooks, path, "--force").unchanged == 2
    write(path, [book("a", price=12.125)])
    with pytest.raises(FixtureError, match=r"row 0, field 'price': .*no more than 2 decimal"):
        run(ImportBooks, path)


@override_settings(USE_TZ=True, TIME_ZONE="Europe/Paris")
def test_a_datetime_in_a_dst_gap_is_refused(tmp_path: Path) -> None:
    # 2026-03-29 02:30 does not exist in Paris: clocks jump from 02:00 to 03:00.
    path = write(tmp_path / "b.json", [book("a", seen_at="2026-03-29T02:30:00")])
    with pytest.raises(FixtureError, match=r"row 0, field 'seen_at': .*does not exist"):
        run(ImportBooks, path)


@override_settings(USE_TZ=True, TIME_ZONE="Europe/Paris")
def test_a_datetime_in_a_dst_fold_settles_on_its_first_occurrence(tmp_path: Path) -> None:
    # 2026-10-25 02:30 happens twice in Paris; like Django's make_aware, the first one counts.
    path = write(tmp_path / "b.json", [book("a", seen_at="2026-10-25T02:30:00")])
    assert run(ImportBooks, path).created == 1
    stored = FixtureBook.objects.get().seen_at
    assert stored is not None and stored.isoformat() == "2026-10-25T00:30:00+00:00"
    assert run(ImportBooks, path, "--force").unchanged == 1


@override_settings(USE_TZ=True, TIME_ZONE="Europe/Paris")
def test_the_singleton_settles_on_a_datetime_in_a_fold(tmp_path: Path) -> None:
    class UpdateBook(SingletonFixtureUpdateCommand):
        fixture_key = "book"
        model_class = FixtureBook

    path = write(tmp_path / "b.json", [book("a", seen_at="2026-10-25T02:30:00")])
    assert run(UpdateBook, path).created == 1
    assert run(UpdateBook, path, "--force").unchanged == 1


@override_settings(USE_TZ=False)
def test_an_aware_datetime_without_time_zone_support_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "b.json", [book("a", seen_at="2026-01-02T10:00:00+01:00")])
    with pytest.raises(FixtureError, match=r"row 0, field 'seen_at': .*USE_TZ = False"):
        run(ImportBooks, path)
    assert not FixtureBook.objects.exists()


def test_the_singleton_refuses_a_foreign_key_id_that_does_not_exist(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", [{"fields": {"site_name": "x", "default_category": 999}}])
    with pytest.raises(
        FixtureError,
        match=r"row 0, field 'default_category': no testapp.FixtureCategory with id 999",
    ):
        run(UpdateSiteConfig, path)
    assert not FixtureSiteConfig.objects.filter(site_name="x").exists()
