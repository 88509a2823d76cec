"""keel.site with keel.fixtures' commands: imports refresh the cache, once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from keel.fixtures import SingletonFixtureUpdateCommand
from tests.site.conftest import CountingConnection
from tests.testapp.models.site import SiteSettings


def singleton_command(path: Path) -> SingletonFixtureUpdateCommand:
    class Command(SingletonFixtureUpdateCommand):
        fixture_key = "site-settings"
        fixture_path = path
        model_class = SiteSettings

    return Command()


@pytest.mark.django_db(transaction=True)
def test_the_singleton_fixture_command_refreshes_the_cache_with_one_publication(
    counted_redis: type[CountingConnection],
    tmp_path: Path,
    settings: Any,
) -> None:
    # The process copy answers the command's own reads: only the publication reaches Redis.
    settings.KEEL = {
        **settings.KEEL,
        "SITE_SETTINGS_LOCAL_TTL": 60,
        "SITE_SETTINGS_TRACKING": False,
    }
    assert SiteSettings.load().phone == ""
    path = tmp_path / "site_settings.json"
    fields = {"phone": "+1 555 0100", "maintenance_mode": "false", "latitude": "48.8584"}
    path.write_text(json.dumps([{"model": "testapp.sitesettings", "fields": fields}]))
    counted_redis.reset()
    call_command(singleton_command(path), verbosity=0)
    assert counted_redis.commands == ["EVALSHA"]  # one publication: version and document
    loaded = SiteSettings.load()  # this process's copy was dropped by the publication
    assert loaded.phone == "+1 555 0100"
    assert loaded.maintenance_mode is False
    assert str(loaded.latitude) == "48.858400"
