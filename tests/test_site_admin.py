"""The admin of keel.site's models: the singleton form, masked secrets, content and SEO."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.forms.models import model_to_dict
from django.test import Client

from tests.testapp.models.site import SiteSettings, StaticContent

ADMIN = "/site/admin/testapp/"
SECRET = "sk_live_admin_plaintext"


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(User.objects.create(username="root", is_staff=True, is_superuser=True))
    return client


def form_data(**changes: Any) -> dict[str, Any]:
    row = SiteSettings.objects.get()
    data = {
        k: ("" if v is None else v)
        for k, v in model_to_dict(row).items()
        if not getattr(SiteSettings._meta.get_field(k), "secret", False)
    }
    data.pop("id", None)
    data["extra_config"] = "{}"
    data.pop("logo", None)
    data.update(changes)
    return data


@pytest.mark.django_db
def test_the_changelist_opens_the_singleton_form(admin_client: Client) -> None:
    response = admin_client.get(ADMIN + "sitesettings/")
    assert response.status_code == 302
    assert response["Location"] == ADMIN + "sitesettings/1/change/"


@pytest.mark.django_db
def test_the_singleton_has_no_add_and_no_delete(admin_client: Client) -> None:
    assert admin_client.get(ADMIN + "sitesettings/add/").status_code == 403
    assert admin_client.get(ADMIN + "sitesettings/1/delete/").status_code == 403
    page = admin_client.get(ADMIN + "sitesettings/1/change/").content.decode()
    assert "/delete/" not in page
    assert "history/" in page


@pytest.mark.django_db
def test_a_secret_is_never_rendered_in_the_form(admin_client: Client) -> None:
    row = SiteSettings.objects.get()
    row.stripe_secret_key = SECRET
    row.save()
    page = admin_client.get(ADMIN + "sitesettings/1/change/").content.decode()
    assert SECRET not in page
    assert 'name="stripe_secret_key"' in page
    assert 'name="stripe_secret_key__clear"' in page


@pytest.mark.django_db(transaction=True)
def test_saving_the_form_keeps_an_untouched_secret_and_publishes(admin_client: Client) -> None:
    row = SiteSettings.objects.get()
    row.stripe_secret_key = SECRET
    row.save()
    assert SiteSettings.load().phone == ""
    response = admin_client.post(ADMIN + "sitesettings/1/change/", form_data(phone="42"))
    assert response.status_code == 302, response.content.decode()[:2000]
    row = SiteSettings.objects.get()
    assert (row.phone, row.stripe_secret_key) == ("42", SECRET)
    assert SiteSettings.load().phone == "42"
    entry = LogEntry.objects.get()
    assert "stripe" not in entry.get_change_message().lower()
    assert SECRET not in entry.change_message


@pytest.mark.django_db
def test_a_secret_can_be_replaced_or_cleared(admin_client: Client) -> None:
    admin_client.post(ADMIN + "sitesettings/1/change/", form_data(stripe_secret_key="new"))
    assert SiteSettings.objects.get().stripe_secret_key == "new"
    admin_client.post(ADMIN + "sitesettings/1/change/", form_data(stripe_secret_key__clear="on"))
    assert SiteSettings.objects.get().stripe_secret_key == ""


@pytest.mark.django_db
def test_view_only_users_do_not_see_secrets(client: Client) -> None:
    row = SiteSettings.objects.get()
    row.stripe_secret_key = SECRET
    row.save()
    viewer = User.objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_sitesettings"))
    client.force_login(viewer)
    page = client.get(ADMIN + "sitesettings/1/change/").content.decode()
    assert "keel" in page
    assert SECRET not in page
    assert "Stripe secret key" not in page


@pytest.mark.django_db(transaction=True)
def test_deleting_content_from_the_admin_refreshes_the_cache(admin_client: Client) -> None:
    row = StaticContent.objects.create(key="greeting", content="Hello")
    assert StaticContent.get_text("greeting") == "Hello"
    response = admin_client.post(
        ADMIN + "staticcontent/",
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert StaticContent.get_text("greeting") == ""


@pytest.mark.django_db
def test_the_content_and_seo_lists_render(admin_client: Client) -> None:
    StaticContent.objects.create(key="greeting", content="Hello " * 40)
    page = admin_client.get(ADMIN + "staticcontent/").content.decode()
    assert "greeting" in page
    assert "Hello Hello" in page
    assert admin_client.get(ADMIN + "staticpageseo/").status_code == 200
