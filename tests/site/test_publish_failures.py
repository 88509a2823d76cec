"""A committed write whose publication fails for a reason other than the store is logged,
never raised to the caller."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from django.db import models
from django.test.utils import isolate_apps

from keel.site.models import SiteSettingsSyncMixin
from tests.conftest import table_of


class RatioField(models.FloatField):  # type: ignore[type-arg]
    """A field with a bug: its text form fails for one value."""

    def to_python(self, value: Any) -> Any:
        return None if value is None else Fraction(str(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return self.to_python(value)

    def value_to_string(self, obj: Any) -> str:
        value = self.value_from_object(obj)
        if value == 3.0:
            raise RuntimeError("RatioField cannot write 3.0")
        return str(value)


def _float_model() -> type[models.Model]:
    class FloatSettings(SiteSettingsSyncMixin):
        ratio = RatioField(default=1)

        class Meta:
            app_label = "testapp"

    return FloatSettings


@pytest.mark.django_db(transaction=True)
def test_a_committed_save_whose_publication_fails_is_logged_not_raised(
    keel_redis: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    with isolate_apps("tests.testapp"):
        FloatSettings = _float_model()
        with table_of(FloatSettings):
            FloatSettings.objects.update_or_create(pk=1, defaults={"ratio": 2.0})
            row = FloatSettings.objects.get(pk=1)
            row.ratio = Fraction(3)
            with caplog.at_level("ERROR", logger="keel.site.publish"):
                row.save()
            assert FloatSettings.objects.get(pk=1).ratio == 3.0  # it did commit
            assert any("FloatSettings" in r.getMessage() for r in caplog.records)
