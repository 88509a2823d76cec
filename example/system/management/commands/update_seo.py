from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand


class Command(JsonFixtureUpsertCommand):
    help = "Create or update the page SEO rows of fixtures/seo.json."
    fixture_key = "system.seo"
    fixture_path = "fixtures/seo.json"
    model_path = "system.StaticPageSeo"
    lookup_fields = ("page_key", "language")
