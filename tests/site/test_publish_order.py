"""A publication never sets the store back to an older version: a real second process commits
and publishes while this process's publication of an earlier commit is still under way."""

from __future__ import annotations

from typing import Any

import pytest

from keel.site import publish as publish_module
from tests.site.conftest import write_from_another_process
from tests.testapp.models.site import SiteSettings


@pytest.fixture(params=["redis", "django-cache"])
def keel_config(request: pytest.FixtureRequest, settings: Any) -> dict[str, Any]:
    if request.param == "redis":
        request.getfixturevalue("keel_redis")
    else:
        settings.KEEL = {
            **settings.KEEL,
            "REDIS_URL": None,
            "SITE_SETTINGS_CACHE_ALIAS": "keel_shared",
        }
    settings.KEEL = {
        **settings.KEEL,
        "SITE_SETTINGS_LOCAL_TTL": 0,
        "SITE_SETTINGS_VERIFY_INTERVAL": 60,
    }
    return dict(settings.KEEL)


@pytest.mark.django_db(transaction=True)
def test_a_slow_publication_never_hides_a_later_commit_of_another_process(
    keel_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    row = SiteSettings.objects.get()
    row.phone = "zero"
    row.save()
    assert SiteSettings.load().phone == "zero"

    original = publish_module.encode_doc
    raced = []

    def slow_encode(*args: Any, **kwargs: Any) -> str:
        if not raced:  # this publication is slow: a real second process saves meanwhile
            raced.append(True)
            write_from_another_process(keel_config, "two")
        return original(*args, **kwargs)

    monkeypatch.setattr(publish_module, "encode_doc", slow_encode)
    row = SiteSettings.objects.get()
    row.phone = "one"
    row.save()
    monkeypatch.setattr(publish_module, "encode_doc", original)
    assert raced
    assert SiteSettings.objects.get().phone == "two"  # committed last
    assert SiteSettings.load().phone == "two"
