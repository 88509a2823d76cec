from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand


class Command(JsonFixtureUpsertCommand):
    help = "Create or update the static content rows of fixtures/static_content.json."
    fixture_key = "system.static_content"
    fixture_path = "fixtures/static_content.json"
    model_path = "system.StaticContent"
    # Rows are unique on (key, language): a row of the fixture updates the row with both.
    lookup_fields = ("key", "language")
    # Editors change these rows in the admin: an import never reverts their edits, and a
    # file that changed an edited field too is reported as a conflict (keel_fixtures check
    # lists the drift, keel_fixtures export writes it back to the file for review).
    edit_policy = "keep_edits"
