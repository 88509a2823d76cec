"""What templates see: lazy context processors, template tags, secrets, languages, outages."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.template import Context, Template, TemplateSyntaxError
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from keel.site.context_processors import PublicSingleton, site_settings, static_content
from tests.site.conftest import CountingConnection, round_trips
from tests.testapp.models.site import SiteSettings, StaticContent, StaticPageSeo

REQUEST_CACHE = "keel.site.middleware.RequestCacheMiddleware"


@pytest.fixture
def request_cache(settings: Any) -> None:
    settings.MIDDLEWARE = [REQUEST_CACHE, *settings.MIDDLEWARE]


@pytest.mark.django_db(transaction=True)
def test_a_template_that_never_touches_the_processors_costs_nothing(
    counted_redis: type[CountingConnection],
    client: Client,
) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/site/page/untouched/")
    assert response.status_code == 200
    assert counted_redis.commands == []
    assert [
        q["sql"] for q in queries if "sitesettings" in q["sql"] or "staticcontent" in q["sql"]
    ] == []


@pytest.mark.django_db(transaction=True)
def test_fifty_attributes_in_a_page_cost_at_most_one_redis_command_and_no_sql(
    counted_redis: type[CountingConnection],
    client: Client,
    settings: Any,
    request_cache: None,
) -> None:
    settings.KEEL = {**settings.KEEL, "SITE_SETTINGS_LOCAL_TTL": 0}
    SiteSettings.objects.update(phone="+1 555 0100", site_name="Acme")
    SiteSettings.load()  # the store is warm
    with round_trips() as queries:
        response = client.get("/site/page/fifty/")
    body = response.content.decode()
    assert body.count("=[") == 50
    assert "phone=[+1 555 0100]" in body
    assert "site_name=[Acme]" in body
    assert len(counted_redis.commands) <= 1
    assert [q["sql"] for q in queries if "sitesettings" in q["sql"]] == []


@pytest.mark.django_db(transaction=True)
def test_pages_render_database_values_while_redis_is_down(settings: Any, client: Client) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": "redis://127.0.0.1:1/0"}
    SiteSettings.objects.update(site_name="Still here")
    StaticContent.objects.create(key="greeting", content="Hello")
    body = client.get("/site/page/content/").content.decode()
    assert body.strip() == "Hello||Still here"


@pytest.mark.django_db(transaction=True)
def test_static_content_renders_in_the_active_language(keel_redis: redis.Redis) -> None:
    StaticContent.objects.create(key="greeting", content="Hello")
    StaticContent.objects.create(key="greeting", language="fr", content="Bonjour")
    template = Template("{{ static_content.greeting }}")
    request = RequestFactory().get("/")
    with translation.override("fr"):
        french = template.render(Context(static_content(request)))
    with translation.override("en"):
        english = template.render(Context(static_content(request)))
    assert (french, english) == ("Bonjour", "Hello")


@pytest.mark.django_db(transaction=True)
def test_template_tags_read_content_seo_and_settings(
    keel_redis: redis.Redis, client: Client
) -> None:
    StaticContent.objects.create(key="greeting", content="Hello <b>")
    StaticPageSeo.objects.create(page_key="home", seo_title="Home page")
    SiteSettings.objects.update(site_name="Acme")
    row = SiteSettings.objects.get()
    row.stripe_secret_key = "sk_live_x"
    row.save()
    body = client.get("/site/page/tags/").content.decode().strip()
    assert body == "Hello &lt;b&gt;|none|Home page|Acme|"


def test_templates_cannot_call_the_model_api_or_private_names() -> None:
    public = PublicSingleton(SiteSettings)
    for name in ("save", "delete", "refresh_from_db", "_meta", "__dict__", "stripe_secret_key"):
        with pytest.raises(AttributeError):
            getattr(public, name)


@pytest.mark.django_db(transaction=True)
def test_templates_can_call_project_methods(keel_redis: redis.Redis) -> None:
    SiteSettings.objects.update(site_name="Acme", tagline="Tools")
    context = Context(site_settings(RequestFactory().get("/")))
    assert Template("{{ site_settings.site_title }}").render(context) == "Acme: Tools"


@pytest.mark.django_db(transaction=True)
def test_every_singleton_is_exposed_under_its_context_name(keel_redis: redis.Redis) -> None:
    context = site_settings(RequestFactory().get("/"))
    assert set(context) == {"site_settings", "booking_settings"}
    assert Template("{{ booking_settings.slot_minutes }}").render(Context(context)) == "30"


def test_a_tag_without_its_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from keel.templatetags import keel_site

    monkeypatch.setattr(keel_site, "context_models", lambda base: {})
    with pytest.raises(TemplateSyntaxError, match="exactly one static content model"):
        Template('{% load keel_site %}{% static_text "x" %}').render(Context())


# -- what a template can never reach ----------------------------------------------------------


def render(source: str) -> str:
    return Template(source).render(Context(site_settings(RequestFactory().get("/"))))


@pytest.mark.django_db(transaction=True)
def test_templates_cannot_call_keels_api_to_reach_secrets(keel_redis: redis.Redis) -> None:
    row = SiteSettings.objects.get()
    row.stripe_secret_key = "sk_live_leak"
    row.save()
    for path in ("load", "objects.get", "cache_sources", "get_content_map"):
        assert render("{{ site_settings." + path + ".stripe_secret_key }}") == ""
    assert "sk_live_leak" not in render("{{ site_settings.load }}")


@pytest.mark.django_db(transaction=True)
def test_relations_never_lead_back_to_an_unwrapped_instance(
    keel_redis: redis.Redis, tmp_path: Any, settings: Any
) -> None:
    from django.core.files.base import ContentFile

    from tests.testapp.models.site import Brand

    settings.MEDIA_ROOT = str(tmp_path)
    brand = Brand.objects.create(name="Acme")
    row = SiteSettings.objects.get()
    row.brand = brand
    row.stripe_secret_key = "sk_live_leak"
    row.logo.save("logo.png", ContentFile(b"png"), save=False)
    row.save()
    assert render("{{ site_settings.brand.name }}") == "Acme"
    for path in (
        "brand.sitesettings_set.first.stripe_secret_key",
        "brand.sitesettings_set.all.0.stripe_secret_key",
        "logo.instance.stripe_secret_key",
        "logo.instance.brand.sitesettings_set.first.stripe_secret_key",
    ):
        assert render("{{ site_settings." + path + " }}") == "", path
    assert render("{{ site_settings.logo.url }}") == "/media/logos/logo.png"
    StaticPageSeo.objects.create(page_key="home", seo_title="Home")
    seo = Template(
        '{% load keel_site %}{% page_seo "home" as seo %}{{ seo.seo_title }}|'
        "{{ seo.seo_image.instance.pk }}|{{ seo.save }}"
    )
    assert seo.render(Context()) == "Home||"


@pytest.mark.django_db(transaction=True)
def test_templates_cannot_publish_or_clear_the_cache(keel_redis: redis.Redis) -> None:
    def versions() -> dict[bytes, bytes | None]:
        keys = keel_redis.scan_iter(match=f"{django_settings.TEST_KEY_PREFIX}:*:gen*")
        return {key: keel_redis.get(key) for key in keys}

    SiteSettings.load()
    before = versions()
    assert before
    render("{{ site_settings.publish }}{{ site_settings.clear_cache }}{{ site_settings.save }}")
    assert versions() == before


@pytest.mark.django_db(transaction=True)
def test_only_listed_project_methods_are_callable_from_templates(
    keel_redis: redis.Redis,
) -> None:
    SiteSettings.objects.update(site_name="Acme", address_locality="Paris")
    assert render("{{ site_settings.site_title }}") == "Acme"  # in template_methods
    assert render("{{ site_settings.get_address }}") == "Paris"  # listed by its field group
    assert render("{{ site_settings.clean }}{{ site_settings.full_clean }}") == ""
