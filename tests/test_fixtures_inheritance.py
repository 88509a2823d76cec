"""Multi-table inheritance children: refused by bulk imports, imported with ``save()``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from keel.fixtures import JsonFixtureUpsertCommand
from tests.testapp.models.fixtures_formats import FixturePlace, FixtureRestaurant

pytestmark = pytest.mark.django_db(transaction=True)


class ImportPlaces(JsonFixtureUpsertCommand):
    fixture_key = "places"
    model_lookups = {FixtureRestaurant: "pk", FixturePlace: "code"}


class ImportRestaurants(JsonFixtureUpsertCommand):
    fixture_key = "restaurants"
    model_class = FixtureRestaurant
    lookup_field = "code"


class SaveRestaurants(ImportRestaurants):
    fixture_key = "restaurants-saved"
    use_bulk = False


def run(command_class: type, rows: list[dict[str, Any]], tmp_path: Path, *args: str) -> Any:
    path = tmp_path / "places.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    command = command_class()
    command.fixture_path = path
    call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    return command.import_result


ROWS = [
    {"model": "testapp.fixturerestaurant", "fields": {"code": "r1", "name": "R", "serves": "x"}}
]


@pytest.mark.parametrize("command_class", [ImportPlaces, ImportRestaurants])
def test_a_bulk_import_of_an_inheritance_child_is_refused(
    tmp_path: Path, command_class: type
) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        run(command_class, ROWS, tmp_path)
    message = str(caught.value)
    assert "testapp.FixtureRestaurant inherits from testapp.FixturePlace" in message
    assert "use_bulk = False" in message
    assert not FixturePlace.objects.exists()


def test_a_parent_of_an_inheritance_child_imports_in_bulk(tmp_path: Path) -> None:
    class ImportOnlyPlaces(JsonFixtureUpsertCommand):
        fixture_key = "only-places"
        model_class = FixturePlace
        lookup_field = "code"

    rows = [{"model": "testapp.fixtureplace", "fields": {"code": "p1", "name": "P"}}]
    assert run(ImportOnlyPlaces, rows, tmp_path).created == 1


def test_an_inheritance_child_imports_with_save_per_row(tmp_path: Path) -> None:
    assert run(SaveRestaurants, ROWS, tmp_path).created == 1
    restaurant = FixtureRestaurant.objects.get(code="r1")
    assert (restaurant.name, restaurant.serves) == ("R", "x")
    result = run(SaveRestaurants, ROWS, tmp_path, "--force")
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
