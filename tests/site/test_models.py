"""keel.site's abstract models: singletons, field groups, content, page SEO, profiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
import redis
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import translation

import keel.site
from keel.redis import make_key
from keel.site import format_address
from keel.site.cache import reset_process_state
from keel.site.models import (
    AbstractSiteSettings,
    SingletonDeletionError,
    normalize_phone,
)
from keel.site.receivers import create_singletons
from tests.testapp.models.site import (
    BookingSettings,
    Brand,
    SiteSettings,
    StaticContent,
    StaticPageSeo,
    UserProfile,
)

# -- singletons -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_migrate_creates_the_singleton_row() -> None:
    assert SiteSettings.objects.filter(pk=1).exists()


@pytest.mark.django_db(transaction=True)
def test_the_post_migrate_receiver_recreates_a_missing_row() -> None:
    SiteSettings._base_manager.all()._raw_delete(using="default")
    create_singletons(apps.get_app_config("testapp"), using="default")
    assert list(SiteSettings.objects.values_list("pk", flat=True)) == [1]


@pytest.mark.django_db
def test_saving_a_new_instance_targets_the_one_row() -> None:
    SiteSettings(site_name="second").save()
    assert list(SiteSettings.objects.values_list("pk", "site_name")) == [(1, "second")]


@pytest.mark.django_db
def test_deleting_a_singleton_is_refused_and_deletes_nothing() -> None:
    with pytest.raises(SingletonDeletionError, match="singleton"):
        SiteSettings.objects.get().delete()
    with pytest.raises(SingletonDeletionError):
        SiteSettings.objects.all().delete()
    assert SiteSettings.objects.count() == 1


@pytest.mark.django_db
def test_every_field_group_composes_without_a_name_clash() -> None:
    names = [f.name for f in SiteSettings._meta.get_fields()]
    assert len(names) == len(set(names))
    pixel = SiteSettings._meta.get_field("facebook_pixel_id")
    assert pixel.model is SiteSettings
    assert issubclass(SiteSettings, AbstractSiteSettings)


# -- the document and to_dict ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_empty_file_fields_and_foreign_keys_publish_and_read_back(
    keel_redis: redis.Redis, settings: Any, tmp_path: Any
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    row = SiteSettings.objects.get()
    row.save()  # empty logo, no brand: must publish
    assert SiteSettings.load().to_dict()["logo"] is None
    brand = Brand.objects.create(name="Acme")
    row.brand = brand
    row.logo.save("logo.png", ContentFile(b"png"), save=False)
    row.save()
    cached = SiteSettings.load()
    assert cached.brand_id == brand.pk
    assert cached.brand.name == "Acme"
    assert cached.logo.name.startswith("logos/logo")
    data = cached.to_dict()
    assert data["brand"] == brand.pk
    assert data["logo"] == "/media/" + cached.logo.name


@pytest.mark.django_db
def test_to_dict_is_json_safe_and_has_no_secret() -> None:
    row = SiteSettings.objects.get()
    row.latitude = Decimal("48.8584")
    row.longitude = Decimal("2.2945")
    row.stripe_secret_key = "sk_live_secret"
    row.save()
    data = SiteSettings.objects.get().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["latitude"] == "48.858400"
    assert data["public_id"] == str(row.public_id)
    assert "stripe_secret_key" not in data
    assert "sk_live_secret" not in json.dumps(data)


# -- field groups ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("latitude", "longitude", "bad_field"),
    [
        (Decimal("90.5"), Decimal("0"), "latitude"),
        (Decimal("0"), Decimal("-180.5"), "longitude"),
        (Decimal("10"), None, "longitude"),
        (None, Decimal("10"), "latitude"),
    ],
)
def test_coordinates_are_validated(
    latitude: Decimal | None, longitude: Decimal | None, bad_field: str
) -> None:
    row = SiteSettings.objects.get()
    row.latitude, row.longitude = latitude, longitude
    with pytest.raises(ValidationError) as error:
        row.full_clean()
    assert bad_field in error.value.message_dict


@pytest.mark.django_db
def test_tracking_ids_that_could_break_out_of_a_script_tag_are_rejected() -> None:
    row = SiteSettings.objects.get()
    row.google_analytics_id = "G-1'</script>"
    row.facebook_pixel_id = "12ab"
    with pytest.raises(ValidationError) as error:
        row.full_clean()
    assert set(error.value.message_dict) == {"google_analytics_id", "facebook_pixel_id"}


@pytest.mark.django_db
def test_social_links_lists_the_links_that_are_set() -> None:
    row = SiteSettings(instagram_url="https://instagram.com/acme", youtube_url="https://y.t/a")
    assert row.social_links() == [
        ("instagram", "https://instagram.com/acme"),
        ("youtube", "https://y.t/a"),
    ]


@pytest.mark.django_db
def test_get_address_joins_the_parts_that_are_set() -> None:
    row = SiteSettings(address_street="1 Main St", address_locality="Springfield")
    assert row.get_address() == "1 Main St, Springfield"


@pytest.mark.parametrize(
    ("name", "address", "expected"),
    [
        ("Acme", "team@acme.test", "Acme <team@acme.test>"),
        ("Acme, Inc.", "team@acme.test", '"Acme, Inc." <team@acme.test>'),
        ('Say "hi"', "team@acme.test", '"Say \\"hi\\"" <team@acme.test>'),
        ("", "team@acme.test", "team@acme.test"),
    ],
)
def test_format_address_quotes_display_names(name: str, address: str, expected: str) -> None:
    assert format_address(name, address) == expected


def test_format_address_encodes_a_non_ascii_name() -> None:
    value = format_address("Café Zoë", "team@acme.test")
    assert value.isascii()
    assert str(make_header(decode_header(value))) == "Café Zoë <team@acme.test>"


def test_format_address_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        format_address("Acme\r\nBcc: victim@example.com", "team@acme.test")


@pytest.mark.django_db
def test_the_sender_name_field_rejects_line_breaks() -> None:
    row = SiteSettings.objects.get()
    row.email_sender_name = "Acme\nBcc: x@y.z"
    with pytest.raises(ValidationError) as error:
        row.full_clean()
    assert "email_sender_name" in error.value.message_dict


@pytest.mark.django_db
def test_get_from_email_builds_a_from_header_that_email_clients_parse(settings: Any) -> None:
    row = SiteSettings(email_from="team@acme.test", email_sender_name="Acme, Inc.")
    message = EmailMessage(
        "s", "b", row.get_from_email(), ["to@x.test"], reply_to=row.get_reply_to()
    )
    parsed = message_from_bytes(message.message().as_bytes())
    assert parsed["From"] == '"Acme, Inc." <team@acme.test>'
    assert parsed["Reply-To"] is None
    settings.DEFAULT_FROM_EMAIL = "default@acme.test"
    assert SiteSettings().get_from_email() == "default@acme.test"
    assert SiteSettings(email_reply_to="r@acme.test").get_reply_to() == ["r@acme.test"]


# -- static content -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_static_content_is_cached_per_language(keel_redis: redis.Redis) -> None:
    StaticContent.objects.bulk_create(
        [
            StaticContent(key="greeting", content="Hello"),
            StaticContent(key="greeting", language="fr", content="Bonjour"),
            StaticContent(key="greeting", language="fr-ca", content="Allô"),
            StaticContent(key="footer", content="© Acme"),
        ]
    )
    with translation.override("fr"):
        assert StaticContent.get_content_map() == {"greeting": "Bonjour", "footer": "© Acme"}
    with translation.override("en"):
        assert StaticContent.get_content_map() == {"greeting": "Hello", "footer": "© Acme"}
    assert StaticContent.get_content_map("fr-ca")["greeting"] == "Allô"
    assert StaticContent.get_content_map("de")["greeting"] == "Hello"
    keys = [k.decode() for k in keel_redis.keys("*{testapp.staticcontent}:content:*")]
    assert {k.rsplit(":", 1)[1] for k in keys} == {"fr", "en", "fr-ca", "de"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("write", ["save", "update", "delete", "queryset_delete", "bulk_update"])
def test_every_write_to_static_content_invalidates_every_language(
    keel_redis: redis.Redis, write: str
) -> None:
    row = StaticContent.objects.create(key="greeting", content="Hello")
    StaticContent.objects.create(key="greeting", language="fr", content="Bonjour")
    assert StaticContent.get_text("greeting") == "Hello"
    assert StaticContent.get_text("greeting", language="fr") == "Bonjour"
    if write == "save":
        row.content = "Hi"
        row.save()
    elif write == "update":
        StaticContent.objects.filter(language="").update(content="Hi")
    elif write == "delete":
        StaticContent.objects.get(language="fr").delete()
    elif write == "queryset_delete":
        StaticContent.objects.filter(language="fr").delete()
    else:
        row.content = "Hi"
        StaticContent.objects.bulk_update([row], ["content"])
    expected_en = "Hello" if write in {"delete", "queryset_delete"} else "Hi"
    expected_fr = "Hello" if write in {"delete", "queryset_delete"} else "Bonjour"
    assert StaticContent.get_text("greeting") == expected_en
    assert StaticContent.get_text("greeting", language="fr") == expected_fr


@pytest.mark.django_db(transaction=True)
def test_static_content_without_redis_reads_the_database() -> None:
    StaticContent.objects.create(key="greeting", content="Hello")
    assert StaticContent.get_text("greeting") == "Hello"
    assert StaticContent.get_text("missing", "fallback") == "fallback"


@pytest.mark.django_db(transaction=True)
def test_static_content_maps_are_read_only(keel_redis: redis.Redis) -> None:
    StaticContent.objects.create(key="greeting", content="Hello")
    with pytest.raises(TypeError):
        StaticContent.get_content_map()["greeting"] = "changed"  # type: ignore[index]


@pytest.mark.django_db
def test_static_content_keys_are_unique_per_language() -> None:
    StaticContent.objects.create(key="greeting", content="Hello")
    StaticContent.objects.create(key="greeting", language="fr", content="Bonjour")
    with pytest.raises(ValidationError):
        StaticContent(key="greeting", language="fr", content="Salut").full_clean()


# -- page SEO -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_page_seo_is_cached_per_page_and_language(keel_redis: redis.Redis) -> None:
    StaticPageSeo.objects.create(page_key="home", seo_title="Home")
    StaticPageSeo.objects.create(page_key="home", language="de", seo_title="Startseite")
    StaticPageSeo.objects.create(page_key="about", seo_title="About")
    with translation.override("de"):
        assert StaticPageSeo.for_page("home").seo_title == "Startseite"  # type: ignore[union-attr]
        assert StaticPageSeo.for_page("about").seo_title == "About"  # type: ignore[union-attr]
    assert StaticPageSeo.for_page("home", "en").seo_title == "Home"  # type: ignore[union-attr]
    keys = [k.decode() for k in keel_redis.keys("*{testapp.staticpageseo}:page:*")]
    assert {tuple(k.rsplit(":", 2)[1:]) for k in keys} == {
        ("de", "home"),
        ("de", "about"),
        ("en", "home"),
    }


@pytest.mark.django_db(transaction=True)
def test_renaming_a_page_key_invalidates_the_old_key(keel_redis: redis.Redis) -> None:
    page = StaticPageSeo.objects.create(page_key="about", seo_title="About")
    assert StaticPageSeo.for_page("about") is not None
    page.page_key = "about-us"
    page.save()
    assert StaticPageSeo.for_page("about") is None
    assert StaticPageSeo.for_page("about-us").seo_title == "About"  # type: ignore[union-attr]


@pytest.mark.django_db(transaction=True)
def test_deleting_a_page_invalidates_it(keel_redis: redis.Redis) -> None:
    page = StaticPageSeo.objects.create(page_key="promo", seo_title="Promo")
    assert StaticPageSeo.for_page("promo") is not None
    page.delete()
    assert StaticPageSeo.for_page("promo") is None


@pytest.mark.django_db(transaction=True)
def test_a_missing_page_is_cached_and_costs_no_query(
    keel_redis: redis.Redis, settings: Any
) -> None:
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    assert StaticPageSeo.for_page("nowhere") is None
    with CaptureQueriesContext(connection) as queries:
        assert StaticPageSeo.for_page("nowhere") is None
    assert len(queries) == 0


@pytest.mark.django_db(transaction=True)
def test_page_seo_with_redis_down_reads_the_database(settings: Any) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": "redis://127.0.0.1:1/0"}
    StaticPageSeo.objects.create(page_key="home", seo_title="Home")
    assert StaticPageSeo.for_page("home").seo_title == "Home"  # type: ignore[union-attr]


@pytest.mark.django_db(transaction=True)
def test_odd_page_keys_make_safe_redis_keys(keel_redis: redis.Redis) -> None:
    odd = "a page key with spaces " + "x" * 200
    StaticPageSeo.objects.create(page_key=odd[:100], seo_title="Odd")
    assert StaticPageSeo.for_page(odd[:100]).seo_title == "Odd"  # type: ignore[union-attr]
    keys = [k.decode() for k in keel_redis.keys("*{testapp.staticpageseo}:page:*")]
    assert keys
    assert all(" " not in k for k in keys)


# -- language-dependent singleton fields ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_translated_settings_fields_are_cached_per_language(keel_redis: redis.Redis) -> None:
    SiteSettings._base_manager.update(tagline="Hello", tagline_fr="Bonjour")
    SiteSettings.publish()
    with translation.override("fr"):
        assert SiteSettings.load().tagline == "Bonjour"  # warms the French copy first
    with translation.override("en"):
        assert SiteSettings.load().tagline == "Hello"
    reset_process_state()  # now from the documents in Redis
    with translation.override("en"):
        assert SiteSettings.load().tagline == "Hello"
    with translation.override("fr"):
        assert SiteSettings.load().tagline == "Bonjour"
    fr_key = make_key("site", "{testapp.sitesettings}", "settings")
    assert any(k.decode().endswith(":fr") for k in keel_redis.keys(fr_key + "*"))


def test_language_dependence_is_detected_from_the_field_descriptors() -> None:
    from keel.site.sources import SingletonSource, has_language_dependent_fields

    assert has_language_dependent_fields(SiteSettings)  # its tagline routes by language
    assert not has_language_dependent_fields(BookingSettings)
    assert not has_language_dependent_fields(UserProfile)  # foreign key and file: Django's own
    assert SingletonSource(SiteSettings).per_language
    assert not SingletonSource(BookingSettings).per_language


@pytest.mark.django_db(transaction=True)
def test_a_singleton_without_language_dependent_fields_keeps_one_document(
    keel_redis: redis.Redis,
) -> None:
    BookingSettings.objects.update(slot_minutes=15)
    for language in ("en", "fr", "de"):
        with translation.override(language):
            assert BookingSettings.load().slot_minutes == 15
    keys = [k.decode() for k in keel_redis.keys("*{testapp.bookingsettings}:settings:*")]
    assert len(keys) == 1
    assert keys[0].endswith(":any")


# -- user profiles --------------------------------------------------------------------------


@pytest.mark.django_db
def test_user_profile_names_initials_and_phone() -> None:
    profile = UserProfile.objects.create(
        first_name="Ada", last_name="Lovelace", phone="+44 (20) 7946-0958"
    )
    assert profile.phone == "+442079460958"
    assert profile.get_full_name() == "Ada Lovelace"
    assert profile.get_initials() == "AL"
    assert UserProfile().get_initials() == "?"
    assert normalize_phone(" 030 / 123.45 ") == "03012345"
    profile.phone = "12ab"
    with pytest.raises(ValidationError) as error:
        profile.full_clean()
    assert "phone" in error.value.message_dict


@pytest.mark.django_db
def test_user_profile_is_reachable_from_the_user() -> None:
    from django.contrib.auth.models import User

    user = User.objects.create(username="ada")
    UserProfile.objects.create(user=user, first_name="Ada")
    assert User.objects.get(pk=user.pk).profile.first_name == "Ada"


@pytest.mark.django_db(transaction=True)
def test_a_write_in_a_failed_transaction_leaves_content_untouched(keel_redis: redis.Redis) -> None:
    StaticContent.objects.create(key="greeting", content="Hello")
    assert StaticContent.get_text("greeting") == "Hello"

    def update_then_fail() -> None:
        with transaction.atomic():
            StaticContent.objects.update(content="rolled back")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        update_then_fail()
    reset_process_state()
    assert StaticContent.get_text("greeting") == "Hello"


def test_keel_site_imports_before_django_is_set_up() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import keel.site, sys; assert 'keel.site.models' not in sys.modules; print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_public_names_resolve_from_the_package() -> None:
    for name in keel.site.__all__:
        assert getattr(keel.site, name) is not None
    with pytest.raises(AttributeError):
        keel.site.NoSuchName  # noqa: B018


def test_verbose_names_survive_field_groups_listed_first() -> None:
    from keel.site import AbstractSiteSettings
    from tests.testapp.models.site import SiteSettings

    # SiteSettings lists the field groups before AbstractSiteSettings.
    assert SiteSettings.__mro__[1] is not AbstractSiteSettings
    assert SiteSettings._meta.verbose_name == "site settings"
    assert SiteSettings._meta.verbose_name_plural == "site settings"
    assert not SiteSettings._meta.abstract


def test_the_public_import_paths_hold_after_the_split() -> None:
    import keel.site
    import keel.site.models
    from keel.profiles.models import AbstractUserProfile
    from keel.site.content import AbstractStaticContent, AbstractStaticPageSeo, LanguageRowsModel

    assert keel.site.models.AbstractUserProfile is AbstractUserProfile
    assert keel.site.AbstractUserProfile is AbstractUserProfile
    assert keel.site.models.AbstractStaticContent is AbstractStaticContent
    assert issubclass(AbstractStaticContent, LanguageRowsModel)
    assert issubclass(AbstractStaticPageSeo, LanguageRowsModel)
    for name in keel.site.models.__all__:
        assert getattr(keel.site.models, name) is not None
