"""URLs of the keel.site tests: template pages and an admin site of the site models."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, path

from keel.site.admin import SingletonModelAdmin, StaticContentAdmin, StaticPageSeoAdmin
from tests.testapp.models.site import SiteSettings, StaticContent, StaticPageSeo

site_admin = admin.AdminSite(name="site_admin")
site_admin.register(SiteSettings, SingletonModelAdmin)
site_admin.register(StaticContent, StaticContentAdmin)
site_admin.register(StaticPageSeo, StaticPageSeoAdmin)


def page(request: HttpRequest, name: str) -> HttpResponse:
    return render(request, f"site/{name}.html")


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


async def async_plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", site_admin.urls),
    path("page/<str:name>/", page, name="site-page"),
    path("plain/", plain, name="site-plain"),
    path("async-plain/", async_plain, name="site-async-plain"),
]
