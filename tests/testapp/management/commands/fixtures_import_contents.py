from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand


class Command(JsonFixtureUpsertCommand):
    help = "Import the content rows, matched on (key, language)."
    fixture_key = "testapp.contents"
    fixture_path = "fixtures_data/contents.json"
    model_path = "testapp.FixtureContent"
    lookup_fields = ("key", "language")
