"""A transaction reads its own writes through the async readers; a save under manual
transaction management commits and reaches readers."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction

from tests.testapp.models.site import SiteSettings, StaticContent, StaticPageSeo


def _save_phone(phone: str) -> None:
    row = SiteSettings.objects.get(pk=1)
    row.phone = phone
    row.save()


@pytest.mark.django_db(transaction=True)
def test_aload_inside_a_transaction_reads_its_own_writes(site_store: str) -> None:
    """aload() inside the writing transaction returns what it wrote."""
    _save_phone("before")
    assert SiteSettings.load().phone == "before"  # warm
    with transaction.atomic():
        _save_phone("inside")
        assert SiteSettings.load().phone == "inside"
        assert async_to_sync(SiteSettings.aload)().phone == "inside"


@pytest.mark.django_db(transaction=True)
def test_aget_content_map_inside_a_transaction_reads_its_own_writes(site_store: str) -> None:
    """aget_content_map() inside the writing transaction returns what it wrote."""
    StaticContent.objects.create(key="k", content="before")
    assert StaticContent.get_content_map() == {"k": "before"}
    with transaction.atomic():
        StaticContent.objects.update(content="inside")
        assert async_to_sync(StaticContent.aget_content_map)() == {"k": "inside"}


@pytest.mark.django_db(transaction=True)
def test_afor_page_inside_a_transaction_reads_its_own_writes(site_store: str) -> None:
    """afor_page() inside the writing transaction returns what it wrote."""
    StaticPageSeo.objects.create(page_key="home", seo_title="before")
    assert StaticPageSeo.for_page("home").seo_title == "before"
    with transaction.atomic():
        StaticPageSeo.objects.update(seo_title="inside")
        assert async_to_sync(StaticPageSeo.afor_page)("home").seo_title == "inside"


@pytest.mark.django_db(transaction=True)
def test_a_save_under_manual_transaction_management_commits_and_publishes(site_store: str) -> None:
    """Under set_autocommit(False), save() does not raise and the committed value is read."""
    _save_phone("before")
    assert SiteSettings.load().phone == "before"
    transaction.set_autocommit(False)
    try:
        _save_phone("manual")
        transaction.commit()
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    assert SiteSettings.load().phone == "manual"
