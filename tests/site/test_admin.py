"""The admin of keel.site's models: the singleton form, masked secrets, content and SEO."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.forms.models import model_to_dict
from django.test import Client

from keel.signals import site_settings_changed
from keel.site.admin import SingletonModelAdmin
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


SETTINGS_FORM = ADMIN + "sitesettings/1/change/"


def _fieldsets(client: Client) -> list[tuple[str | None, list[str]]]:
    response = client.get(SETTINGS_FORM)
    return [(fieldset.name, list(fieldset.fields)) for fieldset in response.context["adminform"]]


@pytest.mark.django_db
def test_the_settings_form_is_laid_out_by_field_group_own_fields_first(
    admin_client: Client,
) -> None:
    fieldsets = _fieldsets(admin_client)
    titles = [title for title, _ in fieldsets]
    assert titles[:4] == [None, "Contact", "Location", "Social networks"]
    assert titles[-3:] == ["Twilio", "seven.io", "Extra configuration"]
    own = fieldsets[0][1]
    assert own[:3] == ["site_name", "tagline", "tagline_fr"]
    assert dict(fieldsets)["Contact"][:2] == ["phone", "email"]
    assert dict(fieldsets)["Stripe"] == [
        "stripe_public_key",
        "stripe_secret_key",
        "stripe_webhook_secret",
    ]
    every = [name for _, names in fieldsets for name in names]
    assert len(every) == len(set(every))


@pytest.mark.django_db
def test_view_only_users_get_the_groups_without_secrets(client: Client) -> None:
    viewer = User.objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_sitesettings"))
    client.force_login(viewer)
    fieldsets = dict(_fieldsets(client))
    assert fieldsets["Stripe"] == ["stripe_public_key"]
    assert "Meta" in fieldsets


@pytest.mark.django_db
def test_labels_are_capitalised_like_djangos_secrets_included(admin_client: Client) -> None:
    form = admin_client.get(SETTINGS_FORM).context["adminform"].form
    assert form.fields["google_recaptcha_site_key"].label == "ReCAPTCHA site key"
    assert form.fields["google_recaptcha_secret_key"].label == "ReCAPTCHA secret key"
    assert form.fields["phone"].label == "Phone"


@pytest.mark.django_db
def test_the_history_shows_old_and_new_values_with_secrets_masked(admin_client: Client) -> None:
    response = admin_client.post(
        SETTINGS_FORM, form_data(phone="42", site_name="Harbour", stripe_secret_key=SECRET)
    )
    assert response.status_code == 302
    message = LogEntry.objects.get().get_change_message()
    assert "Phone (“” → “42”)" in message
    assert "Site name (“keel” → “Harbour”)" in message
    assert "Stripe secret key (“” → “••••••••”)" in message
    assert SECRET not in LogEntry.objects.get().change_message
    history = admin_client.get(SETTINGS_FORM.replace("change/", "history/")).content.decode()
    assert "Phone (“” → “42”)" in history


@pytest.mark.django_db
def test_site_settings_changed_is_sent_once_the_save_commits(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    received: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        received.append(kwargs)

    site_settings_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            admin_client.post(SETTINGS_FORM, form_data(phone="42", stripe_secret_key=SECRET))
        assert received == []
        for callback in callbacks:
            callback()
        admin_client.post(SETTINGS_FORM, form_data(phone="42"))
    finally:
        site_settings_changed.disconnect(receiver)
    [sent] = received
    assert sent["sender"] is SiteSettings
    assert sent["changes"] == {"phone": ("", "42"), "stripe_secret_key": ("", "••••••••")}
    assert sent["instance"].phone == "42"


@pytest.mark.django_db
def test_a_field_is_reset_to_its_default(admin_client: Client) -> None:
    SiteSettings.objects.filter(pk=1).update(site_name="Harbour", maintenance_mode=True)
    page = admin_client.get(SETTINGS_FORM).content.decode()
    assert '<option value="site_name">Site name</option>' in page
    assert '<option value="maintenance_mode">Maintenance mode</option>' in page
    assert '<option value="phone">' not in page
    response = admin_client.post(ADMIN + "sitesettings/1/reset/", {"field": "site_name"})
    assert response.status_code == 302
    row = SiteSettings.objects.get()
    assert (row.site_name, row.maintenance_mode) == ("keel", True)
    assert "Site name (“Harbour” → “keel”)" in LogEntry.objects.get().get_change_message()
    assert SiteSettings.load().site_name == "keel"


@pytest.mark.django_db(transaction=True)
def test_reset_writes_only_its_field_on_the_row_as_it_is_now(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    SiteSettings.objects.filter(pk=1).update(site_name="Harbour", phone="1")
    read = SingletonModelAdmin.get_object

    def read_then_another_editor_saves(self: Any, *args: Any) -> Any:
        obj = read(self, *args)
        other = SiteSettings.objects.get(pk=1)
        other.phone = "2"
        other.save()
        return obj

    monkeypatch.setattr(SingletonModelAdmin, "get_object", read_then_another_editor_saves)
    received: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        received.append(kwargs["changes"])

    site_settings_changed.connect(receiver)
    try:
        response = admin_client.post(ADMIN + "sitesettings/1/reset/", {"field": "site_name"})
    finally:
        site_settings_changed.disconnect(receiver)
    assert response.status_code == 302
    row = SiteSettings.objects.get()
    assert (row.site_name, row.phone) == ("keel", "2")
    assert received == [{"phone": ("1", "2")}, {"site_name": ("Harbour", "keel")}]
    assert LogEntry.objects.get().get_change_message() == "Changed Site name (“Harbour” → “keel”)."


@pytest.mark.django_db
def test_reset_refuses_fields_without_a_default_gets_and_viewers(
    admin_client: Client, client: Client
) -> None:
    SiteSettings.objects.filter(pk=1).update(phone="42", site_name="Harbour")
    reset = ADMIN + "sitesettings/1/reset/"
    response = admin_client.post(reset, {"field": "phone"}, follow=True)
    assert "This field has no default to reset to." in response.content.decode()
    assert admin_client.post(reset, {"field": "stripe_secret_key"}).status_code == 302
    assert admin_client.get(reset).status_code == 405
    viewer = User.objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_sitesettings"))
    client.force_login(viewer)
    assert "keel-reset" not in client.get(SETTINGS_FORM).content.decode()
    assert client.post(reset, {"field": "site_name"}).status_code == 403
    assert SiteSettings.objects.get().phone == "42"
    assert SiteSettings.objects.get().site_name == "Harbour"
    assert not LogEntry.objects.exists()
