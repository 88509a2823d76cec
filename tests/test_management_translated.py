"""keel's management commands speak the active language to people; the fixture listing,
which scripts read, stays the same in every language."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from tests.testapp.management.commands.fixtures_update_all import Command as UpdateAll
from tests.testapp.management.commands.fixtures_update_site_config import (
    Command as UpdateSiteConfig,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _run(command: object, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=out)  # type: ignore[arg-type]
    return out.getvalue()


def test_the_purge_command_speaks_french() -> None:
    with translation.override("fr"):
        output = _run("keel_purge_tokens", "--dry-run")
        with pytest.raises(CommandError, match="doit être un entier positif, reçu 0"):
            _run("keel_purge_tokens", "--batch-size", "0")
    assert output == "À supprimer (essai à blanc) : 0 jeton d\u2019action expiré.\n"
    assert _run("keel_purge_tokens") == "Deleted 0 expired action tokens.\n"


def test_a_fixture_import_reports_in_french() -> None:
    with translation.override("fr"):
        imported = _run(UpdateSiteConfig())
        skipped = _run(UpdateSiteConfig())
        dry_run = _run(UpdateSiteConfig(), "--force", "--dry-run")
    assert "testapp.site_config : créés : 0, mis à jour : 1, inchangés : 0" in imported
    assert skipped == "testapp.site_config : inchangé, ignoré (--force importe quand même).\n"
    assert "essai à blanc, aurait : créés : 0, mis à jour : 0, inchangés : 1" in dry_run


def test_fixture_errors_name_the_row_and_field_in_french(tmp_path: Path) -> None:
    path = tmp_path / "site.json"
    path.write_text(
        json.dumps([{"model": "testapp.fixturesiteconfig", "fields": {"fee": "lots"}}]),
        encoding="utf-8",
    )
    command = UpdateSiteConfig()
    command.fixture_path = path  # type: ignore[misc]
    with translation.override("fr"), pytest.raises(CommandError) as raised:
        _run(command)
    assert f"{path}, enregistrement 0, champ 'fee'" in str(raised.value)


def test_the_fixture_listing_stays_the_same_in_every_language() -> None:
    english = _run("keel_fixtures")
    with translation.override("fr"):
        french = _run("keel_fixtures")
        with pytest.raises(CommandError, match="la liste ne prend pas de clés"):
            _run("keel_fixtures", "list", "some.key")
    assert french == english
    assert english.split()[:5] == ["command", "key", "stored", "current", "state"]


def test_the_update_all_summary_keeps_its_status_words_in_french() -> None:
    with translation.override("fr"):
        first = _run(UpdateAll())
        again = _run(UpdateAll())
    assert "Résumé" in first
    assert "commande" in first
    assert "imported" in first
    assert "unchanged" in again
