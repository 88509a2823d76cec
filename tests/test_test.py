"""keel.test: overriding site settings in tests, and save() then load() in a TestCase."""

from __future__ import annotations

import asyncio

import pytest
from django.template import Context, Template
from django.test import RequestFactory, TestCase

from keel.site.context_processors import site_settings
from keel.test import override_site_settings
from tests.testapp.models.site import BookingSettings, Brand, SiteSettings


@pytest.mark.django_db
@override_site_settings(maintenance_mode=True, site_name="Overridden")
def test_a_decorated_test_loads_the_overridden_values() -> None:
    loaded = SiteSettings.load()
    assert loaded.maintenance_mode is True
    assert loaded.site_name == "Overridden"
    assert SiteSettings.objects.get().site_name == "keel"  # nothing was written
    context = Context(site_settings(RequestFactory().get("/")))
    assert Template("{{ site_settings.site_name }}").render(context) == "Overridden"
    assert asyncio.run(SiteSettings.aload()).site_name == "Overridden"


@pytest.mark.django_db
def test_the_override_ends_with_its_block_and_nests() -> None:
    with override_site_settings(site_name="outer"):
        with override_site_settings(site_name="inner", phone="1"):
            assert (SiteSettings.load().site_name, SiteSettings.load().phone) == ("inner", "1")
        assert (SiteSettings.load().site_name, SiteSettings.load().phone) == ("outer", "")
    assert SiteSettings.load().site_name == "keel"


@pytest.mark.django_db
def test_another_singleton_is_named_by_its_model() -> None:
    with override_site_settings(BookingSettings, slot_minutes=15):
        assert BookingSettings.load().slot_minutes == 15
        assert SiteSettings.load().site_name == "keel"


def test_an_unknown_field_is_a_clear_error() -> None:
    override = override_site_settings(site_nam="typo")
    with pytest.raises(ValueError, match=r"testapp\.SiteSettings has no field 'site_nam'"):
        override.enable()


@pytest.mark.django_db(transaction=True)
def test_a_foreign_key_is_overridden_by_an_instance_or_by_its_key(site_store: str) -> None:
    brand = Brand.objects.create(name="Acme")
    with override_site_settings(brand=brand):
        loaded = SiteSettings.load()
        assert loaded.brand_id == brand.pk
        assert loaded.brand == brand
    with override_site_settings(brand_id=brand.pk):
        assert SiteSettings.load().brand == brand
    assert SiteSettings.load().brand_id is None


@pytest.mark.django_db
def test_a_foreign_key_given_an_instance_of_another_model_is_a_clear_error() -> None:
    override = override_site_settings(brand=BookingSettings())
    with pytest.raises(ValueError, match=r"SiteSettings\.brand"):
        override.enable()


@override_site_settings(site_name="for the class")
class DecoratedTestCase(TestCase):
    def test_every_test_of_the_class_sees_the_override(self) -> None:
        assert SiteSettings.load().site_name == "for the class"

    def test_save_then_load_reads_the_saved_row_under_the_override(self) -> None:
        row = SiteSettings.objects.get()
        row.phone = "+1 555 0100"
        row.save()
        loaded = SiteSettings.load()
        assert (loaded.phone, loaded.site_name) == ("+1 555 0100", "for the class")
