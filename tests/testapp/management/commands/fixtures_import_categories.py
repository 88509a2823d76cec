from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand


class Command(JsonFixtureUpsertCommand):
    help = "Import the categories."
    fixture_key = "testapp.categories"
    fixture_path = "fixtures_data/categories.json"
    model_path = "testapp.FixtureCategory"
    lookup_field = "slug"
