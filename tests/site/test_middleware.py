"""Maintenance mode and the request memo middleware."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import AsyncClient, Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from keel.site.middleware import MaintenanceModeMiddleware, RequestCacheMiddleware
from tests.testapp.models.site import SiteSettings

MAINTENANCE = "keel.site.middleware.MaintenanceModeMiddleware"
REQUEST_CACHE = "keel.site.middleware.RequestCacheMiddleware"


@pytest.fixture
def maintenance(settings: Any) -> None:
    settings.MIDDLEWARE = [REQUEST_CACHE, *settings.MIDDLEWARE, MAINTENANCE]
    SiteSettings.objects.update(maintenance_mode=True, maintenance_message="Back at 10:00.")


@pytest.mark.django_db(transaction=True)
def test_maintenance_mode_answers_503_to_visitors(maintenance: None, client: Client) -> None:
    response = client.get("/site/plain/")
    assert response.status_code == 503
    assert response["Retry-After"] == "300"
    assert "Back at 10:00." in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_maintenance_mode_lets_active_staff_through(maintenance: None, client: Client) -> None:
    staff = User.objects.create(username="staff", is_staff=True)
    client.force_login(staff)
    assert client.get("/site/plain/").status_code == 200
    staff.is_active = False
    staff.save()
    client.force_login(User.objects.create(username="visitor"))
    assert client.get("/site/plain/").status_code == 503


@pytest.mark.django_db(transaction=True)
def test_maintenance_mode_leaves_the_admin_reachable_to_log_in(
    maintenance: None, client: Client
) -> None:
    assert client.get("/admin/login/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_without_maintenance_mode_visitors_pass_without_loading_the_user(
    settings: Any, client: Client
) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MAINTENANCE]
    assert client.get("/site/plain/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/site/plain/").status_code == 200
    assert len(queries) == 0


@pytest.mark.django_db(transaction=True)
def test_maintenance_mode_in_an_async_stack(maintenance: None) -> None:
    async def get(path: str) -> Any:
        return await AsyncClient().get(path)

    assert asyncio.run(get("/site/async-plain/")).status_code == 503
    SiteSettings.objects.update(maintenance_mode=False)
    assert asyncio.run(get("/site/async-plain/")).status_code == 200


def test_maintenance_middleware_without_authentication_is_a_clear_error() -> None:
    middleware = MaintenanceModeMiddleware(lambda request: None)
    request = RequestFactory().get("/site/plain/")

    class Loaded:
        maintenance_mode = True

    class Model:
        @staticmethod
        def load() -> Loaded:
            return Loaded()

    middleware.settings_model = Model  # type: ignore[assignment,misc]
    with pytest.raises(ImproperlyConfigured, match="AuthenticationMiddleware"):
        middleware(request)


@pytest.mark.django_db(transaction=True)
def test_the_request_memo_lives_for_one_request() -> None:
    seen: list[Any] = []

    def view(request: Any) -> Any:
        seen.append((SiteSettings.load(), SiteSettings.load()))

    middleware = RequestCacheMiddleware(view)
    middleware(RequestFactory().get("/"))
    middleware(RequestFactory().get("/"))
    (a1, a2), (b1, _) = seen
    assert a1 is a2
    assert a1 is not b1
