from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand


class Command(JsonFixtureUpsertCommand):
    help = "Create or update the static content rows of fixtures/static_content.json."
    fixture_key = "system.static_content"
    fixture_path = "fixtures/static_content.json"
    model_path = "system.StaticContent"
    # Rows are unique on (key, language): a row of the fixture updates the row with both.
    lookup_fields = ("key", "language")
