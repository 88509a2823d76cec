"""WSGI entry point of ``bench/site_tracking.py``: ``bench/load_app.py``'s application with
``KEEL["SITE_SETTINGS_TRACKING"]`` from ``KEEL_BENCH_TRACKING`` (``1`` or ``0``), each response
saying which worker answered (``X-Keel-Worker``) and the machine's ``time.monotonic()`` just
before and after the request's read of the site settings (``X-Keel-Read``), made first thing
in the request memo, so that the whole page shows what was read between the two times.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import config.settings as example_settings

# Before Django reads the settings module (bench.load_app imports config.wsgi, which sets up).
example_settings.KEEL["SITE_SETTINGS_TRACKING"] = os.environ["KEEL_BENCH_TRACKING"] == "1"
_memo = example_settings.MIDDLEWARE.index("keel.site.middleware.RequestCacheMiddleware")
example_settings.MIDDLEWARE.insert(_memo + 1, "bench.tracking_app.ReadTimeMiddleware")


class ReadTimeMiddleware:
    """Read the site settings first thing in the request, and say when (``X-Keel-Read``)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from system.models import SiteSettings

        before = time.monotonic()
        SiteSettings.load()
        after = time.monotonic()
        response = self.get_response(request)
        response["X-Keel-Read"] = f"{before} {after}"
        return response


# Defined above: building the application loads the middleware, this module's included.
from bench.load_app import application as counted_application

StartResponse = Callable[..., Any]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    def stamped_start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        stamped = [*headers, ("X-Keel-Worker", str(os.getpid()))]
        return start_response(status, stamped, *exc)

    return counted_application(environ, stamped_start)
