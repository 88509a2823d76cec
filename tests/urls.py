from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("site/", include("tests.testapp.urls_site")),
    path("fixtures/", include("tests.testapp.urls_fixtures")),
    path("tokens/", include("tests.testapp.urls_tokens")),
    path("mixins/", include("tests.testapp.urls_mixins")),
]
