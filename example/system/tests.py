"""The example's own tests (``python manage.py test system``): how a project tests code that
reads its site settings."""

from __future__ import annotations

from django.test import TestCase

from keel.test import override_site_settings
from system.models import SiteSettings


class MaintenanceModeTests(TestCase):
    @override_site_settings(maintenance_mode=True, maintenance_message="Back soon")
    def test_visitors_get_the_maintenance_page(self) -> None:
        response = self.client.get("/")
        assert response.status_code == 503
        self.assertContains(response, "Back soon", status_code=503)

    def test_the_site_is_open_by_default(self) -> None:
        assert self.client.get("/").status_code == 200


class SiteNameTests(TestCase):
    def test_a_saved_name_is_served_at_once(self) -> None:
        settings = SiteSettings.load()
        settings.site_name = "Renamed"
        settings.save()
        assert SiteSettings.load().site_name == "Renamed"
        self.assertContains(self.client.get("/"), "Renamed")

    @override_site_settings(newsletter_enabled=False)
    def test_the_signup_form_hides_when_the_newsletter_is_off(self) -> None:
        self.assertNotContains(self.client.get("/"), "<form")
