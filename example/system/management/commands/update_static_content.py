from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand


class Command(JsonFixtureUpsertCommand):
    help = "Create or update the static content rows of fixtures/static_content.json."
    fixture_key = "system.static_content"
    fixture_path = "fixtures/static_content.json"
    model_path = "system.StaticContent"
    # Rows are unique on (key, language); the upsert matches on one unique field, so the
    # fixture carries Django's usual "pk".
    lookup_field = "pk"
