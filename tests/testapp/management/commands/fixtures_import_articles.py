from __future__ import annotations

from keel.fixtures import JsonFixtureUpsertCommand
from tests.testapp.models.fixtures import FixtureArticle


class Command(JsonFixtureUpsertCommand):
    help = "Import the articles."
    fixture_key = "testapp.articles"
    fixture_path = "fixtures_data/articles.json"
    model_class = FixtureArticle
    lookup_field = "key"
    natural_key_fields = {"tags": ("name",)}
