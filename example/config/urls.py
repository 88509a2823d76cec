from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from newsletter.views import SignupView

urlpatterns = [
    path("", SignupView.as_view(), name="home"),
    path("newsletter/", include("newsletter.urls")),
    path("admin/", admin.site.urls),
]
