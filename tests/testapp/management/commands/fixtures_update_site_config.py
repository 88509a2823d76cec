from __future__ import annotations

from keel.fixtures import SingletonFixtureUpdateCommand


class Command(SingletonFixtureUpdateCommand):
    help = "Update the site configuration."
    fixture_key = "testapp.site_config"
    fixture_path = "fixtures_data/site_config.json"
    model_path = "testapp.FixtureSiteConfig"
