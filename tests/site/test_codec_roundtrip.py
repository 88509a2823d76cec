"""Every field value publishes and reads back with its type, or its field is the system check
error keel.E008: never an error at read time (Redis store)."""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps

from keel.site.cache import reset_process_state
from keel.site.models import SiteSettingsSyncMixin
from tests.conftest import table_of


@pytest.fixture
def local_ttl_zero(keel_redis: Any, settings: Any) -> None:
    """Redis as the store (a Django cache store swallows every exception, so it holds)."""
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}


@contextmanager
def settings_model(**fields: models.Field[Any, Any]) -> Iterator[Any]:
    """A site-settings model with ``fields``, and its table, while the block runs."""
    with isolate_apps("tests.testapp"):
        meta = type("Meta", (), {"app_label": "testapp"})
        body = {"__module__": __name__, "Meta": meta, **fields}
        with table_of(type("IsolatedSettings", (SiteSettingsSyncMixin,), body)) as model:
            yield model


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "mysql", reason="MariaDB refuses infinite floats")
def test_an_infinite_float_publishes_and_loads(local_ttl_zero: None) -> None:
    """An infinite float is published as text and read back as a float."""
    with settings_model(ratio=models.FloatField(default=1.0)) as FloatSettings:
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(FloatSettings._meta.db_table)
            cursor.execute(f"INSERT INTO {table} (id, ratio) VALUES (1, %s)", [float("inf")])
        reset_process_state()
        assert FloatSettings.load().ratio == float("inf")


class DecimalDecoder(json.JSONDecoder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parse_float"] = decimal.Decimal
        super().__init__(*args, **kwargs)


@pytest.mark.django_db(transaction=True)
def test_a_json_field_with_a_decoder_and_no_encoder_is_a_check_error(local_ttl_zero: None) -> None:
    """A JSONField whose decoder gives values its (absent) encoder cannot write is keel.E008."""
    from keel.site.codec import unpublishable_reason

    with settings_model(prices=models.JSONField(default=dict, decoder=DecimalDecoder)) as model:
        checked = unpublishable_reason(model._meta.get_field("prices"))
        model.objects.update_or_create(pk=1, defaults={"prices": {"tea": 1.5}})
        reset_process_state()
        try:
            loaded = model.load().prices
        except TypeError:
            loaded = "load() raised TypeError"
        assert checked is not None, loaded


class Code:
    """A third-party field's value object."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Code) and other.text == self.text

    def __str__(self) -> str:
        return self.text


class CodeField(models.CharField):  # type: ignore[type-arg]
    """A CharField subclass that hands out objects (from_db_value) without its own to_python."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else Code(value)

    def get_prep_value(self, value: Any) -> Any:
        return None if value is None else str(value)


@pytest.mark.django_db(transaction=True)
def test_a_char_field_subclass_giving_objects_without_to_python_is_a_check_error(
    local_ttl_zero: None,
) -> None:
    """A CharField subclass giving objects (from_db_value) without a to_python is keel.E008."""
    from keel.site.codec import unpublishable_reason

    with settings_model(code=CodeField(max_length=10, default="abc")) as CodeSettings:
        checked = unpublishable_reason(CodeSettings._meta.get_field("code"))
        CodeSettings.objects.update_or_create(pk=1, defaults={"code": "xyz"})
        assert CodeSettings.objects.get().code == Code("xyz")  # what the ORM returns
        reset_process_state()
        loaded = CodeSettings.load().code  # from the published document
        assert checked is not None, type(loaded)


class EncodedJSON(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        return float(o) if isinstance(o, decimal.Decimal) else super().default(o)


@pytest.mark.django_db(transaction=True)
def test_a_json_field_with_its_own_encoder_and_decoder_publishes_through_them(
    local_ttl_zero: None,
) -> None:
    """A JSONField with an encoder and a decoder publishes as their JSON text."""
    from keel.site.codec import unpublishable_reason

    prices = models.JSONField(default=dict, encoder=EncodedJSON, decoder=DecimalDecoder)
    with settings_model(prices=prices) as PriceSettings:
        assert unpublishable_reason(PriceSettings._meta.get_field("prices")) is None
        PriceSettings.objects.update_or_create(pk=1, defaults={"prices": {"tea": 1.5}})
        reset_process_state()
        assert PriceSettings.load().prices == {"tea": decimal.Decimal("1.5")}  # rebuilt
        reset_process_state()
        assert PriceSettings.load().prices == {"tea": decimal.Decimal("1.5")}  # published
