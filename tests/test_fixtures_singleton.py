"""SingletonFixtureUpdateCommand: converted values, model fields only, only changed fields
saved, one save."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext

from keel.fixtures import FixtureError, FixtureImportResult, SingletonFixtureUpdateCommand
from keel.models import FixtureState
from tests.testapp.management.commands.fixtures_update_site_config import (
    Command as UpdateSiteConfig,
)
from tests.testapp.models.fixtures import (
    FixtureCategory,
    FixturePlainSingleton,
    FixtureSiteConfig,
)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other"])


def write(path: Path, fields: dict[str, Any], model: str = "testapp.fixturesiteconfig") -> Path:
    path.write_text(json.dumps([{"model": model, "fields": fields}]), encoding="utf-8")
    return path


def command_for(path: Path) -> UpdateSiteConfig:
    command = UpdateSiteConfig()
    command.fixture_path = path  # type: ignore[misc]
    return command


def run(command: SingletonFixtureUpdateCommand, *args: str, **options: Any) -> FixtureImportResult:
    options.setdefault("stdout", io.StringIO())
    options.setdefault("stderr", io.StringIO())
    call_command(command, *args, **options)
    assert command.import_result is not None
    return command.import_result


def test_strings_land_in_boolean_decimal_and_date_fields() -> None:
    result = run(UpdateSiteConfig())
    assert result.updated == 1
    config = FixtureSiteConfig.objects.get()
    assert config.maintenance is False
    assert config.fee == Decimal("12.50")
    assert config.launch is not None and config.launch.isoformat() == "2026-01-02"
    assert config.site_name == "Keel demo"


def test_only_changed_fields_are_saved_once(tmp_path: Path) -> None:
    FixtureSiteConfig.objects.create(pk=1, site_name="Old", fee=Decimal("12.5"), maintenance=False)
    saves: list[Any] = []

    def on_save(sender: Any, update_fields: Any, **kwargs: Any) -> None:
        saves.append(update_fields)

    path = write(tmp_path / "s.json", {"site_name": "New", "fee": "12.50", "maintenance": "no"})
    post_save.connect(on_save, sender=FixtureSiteConfig)
    try:
        with CaptureQueriesContext(connection) as queries:
            result = run(command_for(path))
    finally:
        post_save.disconnect(on_save, sender=FixtureSiteConfig)
    assert result.updated == 1
    assert saves == [frozenset({"site_name"})]
    updates = [
        q["sql"]
        for q in queries
        if q["sql"].startswith("UPDATE") and "fixturesiteconfig" in q["sql"]
    ]
    assert len(updates) == 1
    assert "site_name" in updates[0] and "fee" not in updates[0] and "maintenance" not in updates[0]


def test_an_unchanged_singleton_is_not_saved(tmp_path: Path) -> None:
    FixtureSiteConfig.objects.create(pk=1, site_name="Same", fee=Decimal("0.00"))
    path = write(tmp_path / "s.json", {"site_name": "Same", "fee": "0"})
    saves: list[Any] = []
    post_save.connect(
        lambda **kw: saves.append(kw), sender=FixtureSiteConfig, weak=False, dispatch_uid="t"
    )
    try:
        result = run(command_for(path))
    finally:
        post_save.disconnect(sender=FixtureSiteConfig, dispatch_uid="t")
    assert (result.updated, result.unchanged) == (0, 1)
    assert saves == []


@pytest.mark.parametrize(("key", "kind"), [("to_dict", "a method"), ("display_name", "a property")])
def test_a_key_naming_a_method_or_property_is_rejected(tmp_path: Path, key: str, kind: str) -> None:
    path = write(tmp_path / "s.json", {"site_name": "X", key: "boom"})
    with pytest.raises(FixtureError) as caught:
        run(command_for(path))
    assert (caught.value.path, caught.value.row, caught.value.field) == (path, 0, key)
    assert f"'{key}' names {kind} of testapp.FixtureSiteConfig, not a model field" in str(
        caught.value
    )
    assert callable(FixtureSiteConfig.to_dict)
    assert not FixtureSiteConfig.objects.filter(site_name="X").exists()
    assert not FixtureState.objects.exists()


def test_an_invalid_value_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", {"fee": "a lot"})
    with pytest.raises(FixtureError, match="row 0, field 'fee': 'a lot' is not a valid value"):
        run(command_for(path))


def test_the_row_must_be_for_the_commands_model(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", {"motto": "x"}, model="testapp.fixtureplainsingleton")
    with pytest.raises(
        FixtureError, match=r"the row is for model 'testapp\.fixtureplainsingleton'"
    ):
        run(command_for(path))


def test_the_models_load_is_used(tmp_path: Path) -> None:
    FixtureSiteConfig.loads = 0
    run(command_for(write(tmp_path / "s.json", {"site_name": "Loaded"})))
    assert FixtureSiteConfig.loads == 1
    assert FixtureSiteConfig.objects.get(pk=1).site_name == "Loaded"


def test_a_model_without_load_gets_its_row_created_from_the_fixture(tmp_path: Path) -> None:
    class UpdatePlain(SingletonFixtureUpdateCommand):
        fixture_key = "testapp.plain"
        model_class = FixturePlainSingleton

    command = UpdatePlain()
    command.fixture_path = write(
        tmp_path / "p.json", {"motto": "Ahoy", "visits": "3"}, model="testapp.fixtureplainsingleton"
    )  # type: ignore[misc]
    assert run(command).created == 1
    assert FixturePlainSingleton.objects.get().visits == 3
    command.fixture_path = write(
        tmp_path / "p.json", {"motto": "Ahoy", "visits": "4"}, model="testapp.fixtureplainsingleton"
    )  # type: ignore[misc]
    assert run(command).updated == 1
    assert FixturePlainSingleton.objects.count() == 1


def test_several_files_merge_in_order(tmp_path: Path) -> None:
    base = write(tmp_path / "base.json", {"site_name": "Base", "fee": "1.00"})
    local = write(tmp_path / "local.json", {"fee": "2.00"})
    command = UpdateSiteConfig()
    command.fixture_paths = [base, local]  # type: ignore[misc]
    run(command)
    config = FixtureSiteConfig.objects.get()
    assert (config.site_name, config.fee) == ("Base", Decimal("2.00"))


def test_foreign_keys_by_id_or_natural_key(tmp_path: Path) -> None:
    category = FixtureCategory.objects.create(slug="news")
    run(command_for(write(tmp_path / "a.json", {"default_category": ["news"]})))
    assert FixtureSiteConfig.objects.get().default_category == category
    with pytest.raises(FixtureError, match=r"no testapp\.FixtureCategory with natural key"):
        run(command_for(write(tmp_path / "b.json", {"default_category": ["nope"]})))


def test_unchanged_file_is_skipped_and_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "s.json", {"site_name": "First"})
    run(command_for(path))
    assert run(command_for(path)).status == "unchanged"
    write(path, {"site_name": "Second"})
    result = run(command_for(path), "--dry-run")
    assert (result.status, result.updated) == ("dry-run", 1)
    assert FixtureSiteConfig.objects.get().site_name == "First"


def test_extra_rows_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"fields": {"site_name": "A"}}, {"fields": {"site_name": "B"}}]))
    err = io.StringIO()
    run(command_for(path), stderr=err)
    assert "1 row after the first ignored" in err.getvalue()
    assert FixtureSiteConfig.objects.get().site_name == "A"


def test_an_empty_fixture_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("[]")
    with pytest.raises(FixtureError, match="needs one row"):
        run(command_for(path))


def test_another_database(tmp_path: Path) -> None:
    run(command_for(write(tmp_path / "s.json", {"site_name": "Other"})), database="other")
    assert FixtureSiteConfig.objects.using("other").get().site_name == "Other"
    assert not FixtureSiteConfig.objects.exists()
