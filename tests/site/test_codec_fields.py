"""Every field type publishes through the field's own serialization, or is a check error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import checks
from django.db import connection, models
from django.test.utils import isolate_apps

from keel.site.cache import reset_process_state
from keel.site.codec import decode_instance, encode_instance
from keel.site.models import SiteSettingsSyncMixin
from tests.conftest import table_of
from tests.testapp.models.site import PhoneNumber, TypedSettings


@pytest.mark.django_db(transaction=True)
def test_a_field_whose_value_is_an_object_publishes_and_reads_back(site_store: str) -> None:
    TypedSettings.objects.update(hotline=PhoneNumber("+1 555 0100"))
    first = TypedSettings.load()  # built from the database, published
    reset_process_state()
    second = TypedSettings.load()  # from the document
    for loaded in (first, second):
        assert isinstance(loaded.hotline, PhoneNumber)
        assert loaded.hotline == PhoneNumber("+15550100")
    assert TypedSettings.load().to_dict()["hotline"] == "+15550100"


def test_an_array_field_round_trips_through_a_document() -> None:
    from django.contrib.postgres.fields import ArrayField

    with isolate_apps("tests.testapp"):

        class ArraySettings(SiteSettingsSyncMixin):
            days = ArrayField(models.DateField(), default=list)
            sizes = ArrayField(ArrayField(models.IntegerField()), default=list)

            class Meta:
                app_label = "testapp"

        import datetime

        row = ArraySettings(pk=1, days=[datetime.date(2025, 1, 2)], sizes=[[1, 2], [3]])
        data = json.loads(json.dumps(encode_instance(row)))
        back = decode_instance(ArraySettings, "default", data)
        assert back.days == [datetime.date(2025, 1, 2)]
        assert back.sizes == [[1, 2], [3]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="ArrayField is PostgreSQL's")
def test_a_settings_model_with_an_array_field_loads_on_postgresql(settings: Any) -> None:
    from django.contrib.postgres.fields import ArrayField

    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    with isolate_apps("tests.testapp"):

        class PgArraySettings(SiteSettingsSyncMixin):
            tags = ArrayField(models.CharField(max_length=20), default=list)

            class Meta:
                app_label = "testapp"

        with table_of(PgArraySettings):
            PgArraySettings.objects.update_or_create(pk=1, defaults={"tags": ["a", "b"]})
            assert PgArraySettings.load().tags == ["a", "b"]
            reset_process_state()
            assert PgArraySettings.load().tags == ["a", "b"]  # from the document


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


class PointField(models.Field):  # type: ignore[type-arg]
    """Turns text from the database into an object and cannot turn it back from text."""

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else Point(*map(int, value.split(",")))


class CounterField(models.Field):  # type: ignore[type-arg]
    """Integers, with Django's identity to_python: published as text, read back as text."""

    def get_internal_type(self) -> str:
        return "BigIntegerField"


def test_a_field_that_cannot_be_published_is_a_check_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keel.site import registry
    from keel.site.checks import check_cached_fields

    with isolate_apps("tests.testapp"):

        class OddSettings(SiteSettingsSyncMixin):
            where = PointField(null=True)
            count = CounterField(default=0)
            secret_where = PointField(null=True)
            label = models.CharField(max_length=10, blank=True)

            class Meta:
                app_label = "testapp"

        OddSettings._meta.get_field("secret_where").secret = True  # type: ignore[attr-defined]
        monkeypatch.setattr(registry, "cached_models", lambda: (OddSettings,))
        errors = check_cached_fields()
    assert [e.id for e in errors] == ["keel.E008", "keel.E008"]
    assert all(isinstance(e, checks.Error) for e in errors)
    assert "testapp.OddSettings.where (PointField)" in errors[0].msg
    assert "from_db_value" in errors[0].msg
    assert "testapp.OddSettings.count (CounterField)" in errors[1].msg


def test_the_test_projects_models_pass_the_field_check() -> None:
    from keel.site.checks import check_cached_fields

    assert check_cached_fields() == []
