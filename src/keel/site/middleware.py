"""Middleware: a per-request memo for cached objects, and maintenance mode.

``RequestCacheMiddleware`` opens the request memo of ``keel.site.cache`` (a
``ContextVar``, reset when the response is returned), so every read of the same cached object
during one request returns the same object without touching even the process copy. Put it
early in ``MIDDLEWARE``.

``MaintenanceModeMiddleware`` answers 503 with ``keel/site/maintenance.html`` while the site
settings have ``maintenance_mode`` on, except for active staff users and the admin (so staff
can log in). Put it after ``AuthenticationMiddleware``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from keel.site.cache import request_scope
from keel.site.registry import get_site_settings_model

__all__ = ["MaintenanceModeMiddleware", "RequestCacheMiddleware"]

GetResponse = Callable[[HttpRequest], Any]


class _Middleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)  # type: ignore[type-var]


class RequestCacheMiddleware(_Middleware):
    """Open a request memo around the rest of the request."""

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        with request_scope():
            return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        with request_scope():
            response: HttpResponseBase = await self.get_response(request)
            return response


class MaintenanceModeMiddleware(_Middleware):
    """503 for everyone but active staff (and the admin) while maintenance mode is on."""

    #: The settings model; ``None``: the one concrete ``AbstractSiteSettings`` subclass.
    settings_model: ClassVar[type[models.Model] | None] = None
    #: Path prefixes always let through (the admin's is added when the admin is installed).
    exempt_path_prefixes: ClassVar[tuple[str, ...]] = ()
    template_name: ClassVar[str] = "keel/site/maintenance.html"
    #: Seconds sent in ``Retry-After``.
    retry_after: ClassVar[int] = 300

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        settings = self._model().load()  # type: ignore[attr-defined]
        if not getattr(settings, "maintenance_mode", False) or self._exempt_path(request):
            return self.get_response(request)
        if _user(request).is_active and _user(request).is_staff:
            return self.get_response(request)
        return self._unavailable(request, settings)

    async def _acall(self, request: HttpRequest) -> Any:
        settings = await self._model().aload()  # type: ignore[attr-defined]
        if not getattr(settings, "maintenance_mode", False) or self._exempt_path(request):
            return await self.get_response(request)
        _user(request)  # fails loudly without AuthenticationMiddleware
        user = await request.auser()
        if user.is_active and user.is_staff:
            return await self.get_response(request)
        return self._unavailable(request, settings)

    def _model(self) -> type[models.Model]:
        return self.settings_model or get_site_settings_model()

    def _exempt_path(self, request: HttpRequest) -> bool:
        prefixes = list(self.exempt_path_prefixes)
        with contextlib.suppress(NoReverseMatch):
            prefixes.append(reverse("admin:index"))
        return any(request.path.startswith(p) for p in prefixes)

    def _unavailable(self, request: HttpRequest, settings: Any) -> HttpResponseBase:
        context = {"message": getattr(settings, "maintenance_message", "")}
        response = render(request, self.template_name, context, status=503)
        response["Retry-After"] = str(self.retry_after)
        response["Cache-Control"] = "no-store"
        return response


def _user(request: HttpRequest) -> Any:
    if not hasattr(request, "user"):
        raise ImproperlyConfigured(
            "MaintenanceModeMiddleware needs request.user: put it after "
            "django.contrib.auth.middleware.AuthenticationMiddleware in MIDDLEWARE."
        )
    return request.user
