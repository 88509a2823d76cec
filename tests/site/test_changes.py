"""site_settings_changed: sent for every save of a singleton, once, after the outermost
commit, with only the fields that changed and secrets masked."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from keel.fixtures import SingletonFixtureUpdateCommand
from keel.signals import site_settings_changed
from keel.site.changes import MASK
from tests.conftest import signal_received
from tests.testapp.models.site import SiteSettings

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "sk_live_signal_plaintext"


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    with signal_received(site_settings_changed) as sent:
        yield sent


def save_then_fail(settings: SiteSettings) -> None:
    with transaction.atomic():
        settings.save()
        raise RuntimeError


def test_a_save_in_code_sends_the_changed_fields_after_commit(
    received: list[dict[str, Any]],
) -> None:
    settings = SiteSettings.objects.get()
    with transaction.atomic():
        settings.phone = "42"
        settings.site_name = "Harbour"
        settings.save()
        assert received == []
    [sent] = received
    assert sent["sender"] is SiteSettings
    assert sent["instance"] is settings
    assert sent["using"] == "default"
    assert sent["changes"] == {"phone": ("", "42"), "site_name": ("keel", "Harbour")}


def test_a_save_that_changes_nothing_sends_nothing(received: list[dict[str, Any]]) -> None:
    settings = SiteSettings.objects.get()
    settings.save()
    settings.phone = ""
    settings.save(update_fields=["phone"])
    assert received == []


def test_values_are_compared_as_the_field_stores_them(received: list[dict[str, Any]]) -> None:
    SiteSettings.objects.update(launched_on="2026-01-02")
    settings = SiteSettings.objects.get()
    settings.launched_on = "2026-01-02"  # type: ignore[assignment]
    settings.save()
    assert received == []


def test_a_rolled_back_save_sends_nothing(received: list[dict[str, Any]]) -> None:
    settings = SiteSettings.objects.get()
    settings.phone = "42"
    with pytest.raises(RuntimeError):
        save_then_fail(settings)
    assert received == []
    assert SiteSettings.objects.get().phone == ""


def test_a_save_in_a_nested_atomic_is_sent_once_the_outermost_commits(
    received: list[dict[str, Any]],
) -> None:
    settings = SiteSettings.objects.get()
    with transaction.atomic():
        with transaction.atomic():
            settings.phone = "42"
            settings.save()
        assert received == []
        settings.site_name = "Undone"
        with pytest.raises(RuntimeError):
            save_then_fail(settings)
        assert received == []
    assert [sent["changes"] for sent in received] == [{"phone": ("", "42")}]


def test_each_save_is_sent_once_with_old_values_from_the_database(
    received: list[dict[str, Any]],
) -> None:
    stale = SiteSettings.objects.get()
    SiteSettings.objects.update(site_name="Changed elsewhere")
    stale.site_name = "Mine"
    stale.save()
    stale.phone = "42"
    stale.save(update_fields=["phone"])
    assert [sent["changes"] for sent in received] == [
        {"site_name": ("Changed elsewhere", "Mine")},
        {"phone": ("", "42")},
    ]


def test_secrets_are_masked_and_loaded_instances_report_only_what_changed(
    received: list[dict[str, Any]],
) -> None:
    settings = SiteSettings.objects.get()
    settings.stripe_secret_key = SECRET
    settings.save()
    loaded = SiteSettings.load()
    loaded.phone = "42"
    loaded.save()
    settings = SiteSettings.objects.get()
    settings.stripe_secret_key = ""
    settings.save()
    assert [sent["changes"] for sent in received] == [
        {"stripe_secret_key": ("", MASK)},
        {"phone": ("", "42")},
        {"stripe_secret_key": (MASK, "")},
    ]
    assert SECRET not in repr(received)
    assert SiteSettings.objects.get().stripe_secret_key == ""


def test_the_singleton_fixture_command_sends_it(
    received: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "site.json"
    path.write_text(
        json.dumps([{"model": "testapp.sitesettings", "fields": {"site_name": "Fixture"}}]),
        encoding="utf-8",
    )

    class UpdateSiteSettings(SingletonFixtureUpdateCommand):
        fixture_key = "testapp.site_settings_signal"
        fixture_path = str(path)
        model_path = "testapp.SiteSettings"

    call_command(UpdateSiteSettings(), stdout=io.StringIO(), stderr=io.StringIO())
    [sent] = received
    assert sent["changes"] == {"site_name": ("keel", "Fixture")}
    call_command(UpdateSiteSettings(), "--force", stdout=io.StringIO(), stderr=io.StringIO())
    assert len(received) == 1


def test_a_save_that_creates_the_row_compares_with_the_defaults(
    received: list[dict[str, Any]],
) -> None:
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(SiteSettings._meta.db_table)
        cursor.execute(f"DELETE FROM {table}")
    SiteSettings(site_name="Harbour", phone="").save()
    [sent] = received
    assert sent["changes"]["site_name"] == ("keel", "Harbour")
    assert "phone" not in sent["changes"]
    assert "updated_at" not in sent["changes"]


def test_writes_that_skip_save_do_not_send_it(received: list[dict[str, Any]]) -> None:
    SiteSettings.objects.update(phone="42")
    settings = SiteSettings.objects.get()
    settings.site_name = "Bulk"
    SiteSettings.objects.bulk_update([settings], ["site_name"])
    assert received == []
    assert SiteSettings.load().site_name == "Bulk"


def test_under_manual_transaction_management_the_save_commits_and_nothing_is_sent(
    received: list[dict[str, Any]],
) -> None:
    settings = SiteSettings.objects.get()
    transaction.set_autocommit(False)
    try:
        settings.phone = "42"
        settings.save()
        transaction.commit()
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    assert SiteSettings.objects.get().phone == "42"
    assert received == []


def test_a_save_locks_and_reads_the_row_before_writing_it_and_reads_it_after() -> None:
    settings = SiteSettings.objects.get()
    settings.phone = "42"
    table = SiteSettings._meta.db_table
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        settings.save()
    touching = [q["sql"] for q in queries.captured_queries if table in q["sql"]]
    statements = [sql.split()[0] for sql in touching]
    if connection.features.has_select_for_update:
        assert statements == ["SELECT", "UPDATE", "SELECT"]
        assert "FOR UPDATE" in touching[0]
    else:  # SQLite: a write that changes nothing takes the write lock first
        assert statements == ["UPDATE", "SELECT", "UPDATE", "SELECT"]
