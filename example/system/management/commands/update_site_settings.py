from __future__ import annotations

from keel.fixtures import SingletonFixtureUpdateCommand


class Command(SingletonFixtureUpdateCommand):
    help = "Merge fixtures/site_settings.json into the SiteSettings row."
    fixture_key = "system.site_settings"
    fixture_path = "fixtures/site_settings.json"
    model_path = "system.SiteSettings"
