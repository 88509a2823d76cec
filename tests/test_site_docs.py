"""Every example of docs/site.md runs here (or, for model definitions, is the test models)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib import admin
from django.contrib.admin import sites
from django.template import Context, Template
from django.test import RequestFactory

from keel.site.context_processors import site_settings, static_content
from tests.docs_examples import DOCS, blocks, run
from tests.testapp.models import site as site_models

ROOT = DOCS.parent
PAGE = "site.md"


def test_the_model_examples_are_the_test_models() -> None:
    source = Path(site_models.__file__).read_text()
    examples = [block.code for block in blocks(PAGE, "python") if block.title == "models.py"]
    assert len(examples) == 2
    for code in examples:
        assert code.strip() in source


@pytest.mark.django_db(transaction=True)
def test_the_python_examples_run(keel_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_site = admin.AdminSite(name="docs_admin")
    monkeypatch.setattr(admin, "site", fresh_site)
    monkeypatch.setattr(sites, "site", fresh_site)
    namespace: dict[str, Any] = {
        "SiteSettings": site_models.SiteSettings,
        "StaticContent": site_models.StaticContent,
        "StaticPageSeo": site_models.StaticPageSeo,
    }
    examples = [block for block in blocks(PAGE, "python") if block.title != "models.py"]
    assert len(examples) >= 7
    run(PAGE, examples, namespace)
    assert fresh_site.is_registered(site_models.SiteSettings)


@pytest.mark.django_db(transaction=True)
def test_the_template_examples_render(keel_redis: redis.Redis) -> None:
    site_models.StaticContent.objects.create(key="greeting", content="Hello")
    site_models.StaticPageSeo.objects.create(page_key="home", seo_description="All about it")
    request = RequestFactory().get("/")
    context = {**site_settings(request), **static_content(request)}
    rendered = [Template(b.code).render(Context(context)) for b in blocks(PAGE, "django")]
    assert len(rendered) == 2
    assert "<title>keel</title>" in rendered[0]
    assert "<p>Hello</p>" in rendered[0]
    assert 'content="All about it"' in rendered[1]
    assert "© keel" in rendered[1]


def test_every_test_the_consistency_model_cites_exists() -> None:
    text = (DOCS / PAGE).read_text()
    section = text[text.index("## Consistency model") : text.index("## Testing")]
    cited = set(re.findall(r"`((?:test_\w+)|(?:\w+Tests?\w*))`", section))
    assert len(cited) >= 25
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    missing = [
        name
        for name in sorted(cited)
        if f"def {name}(" not in sources and f"class {name}(" not in sources
    ]
    assert missing == []
