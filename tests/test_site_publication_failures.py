"""A committed write whose publication fails for a reason other than the store is logged,
never raised to the caller."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps

from keel.site.models import SiteSettingsSyncMixin


def _float_model() -> type[models.Model]:
    class FloatSettings(SiteSettingsSyncMixin):
        ratio = models.FloatField(default=1.0)

        class Meta:
            app_label = "testapp"

    return FloatSettings


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "mysql", reason="MariaDB refuses infinite floats")
def test_a_committed_save_whose_publication_fails_is_logged_not_raised(
    keel_redis: Any, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    with isolate_apps("tests.testapp"):
        FloatSettings = _float_model()
        with connection.schema_editor() as editor:
            editor.create_model(FloatSettings)
        try:
            FloatSettings.objects.update_or_create(pk=1, defaults={"ratio": 2.0})
            row = FloatSettings.objects.get(pk=1)
            row.ratio = float("inf")
            with caplog.at_level("ERROR", logger="keel.site.publish"):
                row.save()
            assert FloatSettings.objects.get(pk=1).ratio == float("inf")  # it did commit
            assert any("FloatSettings" in r.getMessage() for r in caplog.records)
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(FloatSettings)
