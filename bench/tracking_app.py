"""WSGI entry point of ``bench/site_tracking.py``: ``bench/load_app.py``'s application, with
``KEEL["SITE_SETTINGS_TRACKING"]`` taken from ``KEEL_BENCH_TRACKING`` (``1`` or ``0``), and two
headers per response: ``X-Keel-Worker`` (the worker's pid) and ``X-Keel-Started`` (its
``time.monotonic()`` when the request arrived, one clock for every process of the machine).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import config.settings as example_settings

# Before Django reads the settings module (bench.load_app imports config.wsgi, which sets up).
example_settings.KEEL["SITE_SETTINGS_TRACKING"] = os.environ["KEEL_BENCH_TRACKING"] == "1"

from bench.load_app import application as counted_application

StartResponse = Callable[..., Any]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    started = str(time.monotonic())

    def stamped_start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        stamped = [*headers, ("X-Keel-Worker", str(os.getpid())), ("X-Keel-Started", started)]
        return start_response(status, stamped, *exc)

    return counted_application(environ, stamped_start)
