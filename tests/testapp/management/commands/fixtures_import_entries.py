from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand


class Command(JsonFixtureUpsertCommand):
    help = "Import the entries."
    fixture_key = "testapp.entries"
    fixture_path = "fixtures_data/entries.json"
    model_path = "testapp.FixtureEntry"
    lookup_field = "key"
