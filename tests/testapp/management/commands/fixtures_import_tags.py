from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand


class Command(JsonFixtureUpsertCommand):
    help = "Import the tags (JSON Lines, one flat object per line)."
    fixture_key = "testapp.tags"
    fixture_path = "fixtures_data/tags.jsonl"
    model_path = "testapp.FixtureTag"
    lookup_field = "name"
    fields_key = None
