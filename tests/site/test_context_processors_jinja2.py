"""Jinja2 reads underscored attributes that Django's template language refuses: keel's template
wrappers refuse them to every engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.template.backends.jinja2 import Jinja2
from django.test import RequestFactory
from jinja2.exceptions import UndefinedError

from tests.testapp.models.site import SiteSettings, StaticContent

PROCESSORS = [
    "keel.site.context_processors.site_settings",
    "keel.site.context_processors.static_content",
]


def _render(tmp_path: Path, source: str) -> str:
    (tmp_path / "page.html").write_text(source)
    engine = Jinja2(
        {
            "NAME": "jinja2",
            "DIRS": [str(tmp_path)],
            "APP_DIRS": False,
            "OPTIONS": {"context_processors": PROCESSORS},
        }
    )
    return engine.get_template("page.html").render({}, RequestFactory().get("/"))


@pytest.fixture
def secret_row(keel_redis: Any, settings: Any, tmp_path: Path) -> SiteSettings:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    row = SiteSettings.objects.get()
    row.stripe_secret_key = "sk_live_leak"
    row.logo.save("logo.png", ContentFile(b"png"), save=False)
    row.save()
    StaticContent.objects.create(key="greeting", content="Hello")
    return row


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "expression",
    [
        "site_settings._load().stripe_secret_key",
        "site_settings._instance.stripe_secret_key",
        "site_settings._loader().stripe_secret_key",
        "site_settings._model.load().stripe_secret_key",
        "site_settings.logo._file.instance.stripe_secret_key",
        "static_content._model.objects.all()",
        "site_settings.__init__.__globals__",
        "site_settings.__class__.__mro__",
    ],
)
def test_a_jinja2_template_never_reaches_a_secret_or_keel_internals(
    secret_row: SiteSettings, tmp_path: Path, expression: str
) -> None:
    with pytest.raises(UndefinedError, match="has no attribute '_"):
        _render(tmp_path, "[{{ " + expression + " }}]")


@pytest.mark.django_db(transaction=True)
def test_a_jinja2_template_reads_published_fields_files_and_content(
    secret_row: SiteSettings, tmp_path: Path
) -> None:
    page = _render(
        tmp_path,
        "{{ site_settings.site_name }}|{{ site_settings.logo.name }}|"
        "{{ static_content.greeting }}|{{ site_settings.site_title() }}",
    )
    assert page == f"keel|{secret_row.logo.name}|Hello|keel"
