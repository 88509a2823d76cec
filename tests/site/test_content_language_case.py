"""Language codes of content and page SEO compare without regard to case, on every database
(whatever its collation)."""

from __future__ import annotations

import pytest

from tests.testapp.models.site import StaticContent, StaticPageSeo


@pytest.mark.django_db(transaction=True)
def test_content_of_a_region_written_in_upper_case_is_read(site_store: str) -> None:
    StaticContent.objects.create(key="greeting", content="Hello")
    StaticContent.objects.create(key="greeting", language="fr-CA", content="Allô")
    assert StaticContent.get_text("greeting", language="fr-ca") == "Allô"
    assert StaticContent.get_text("greeting", language="FR-CA") == "Allô"
    assert StaticContent.get_text("greeting", language="en") == "Hello"


@pytest.mark.django_db(transaction=True)
def test_page_seo_of_a_region_written_in_upper_case_is_read(site_store: str) -> None:
    StaticPageSeo.objects.create(page_key="home", seo_title="Welcome")
    StaticPageSeo.objects.create(page_key="home", language="fr-CA", seo_title="Bienvenue")
    found = StaticPageSeo.for_page("home", language="fr-ca")
    assert found is not None and found.seo_title == "Bienvenue"
    found = StaticPageSeo.for_page("home", language="en")
    assert found is not None and found.seo_title == "Welcome"
