from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand


class Command(JsonFixtureUpsertCommand):
    help = "Create or update the page SEO rows of fixtures/seo.json."
    fixture_key = "system.seo"
    fixture_path = "fixtures/seo.json"
    model_path = "system.StaticPageSeo"
    lookup_fields = ("page_key", "language")
    # Editors change these rows in the admin: an import never reverts their edits, and a
    # file that changed an edited field too is reported as a conflict (keel_fixtures check
    # lists the drift, keel_fixtures export writes it back to the file for review).
    edit_policy = "keep_edits"
