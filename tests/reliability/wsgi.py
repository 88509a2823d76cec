"""The test project as a WSGI application for gunicorn, on the test run's databases.

Environment: ``KEEL_RELIAB_DB_NAME`` (the test database pytest-django created),
``KEEL_RELIAB_KEEL`` (a JSON object merged over the test settings' ``KEEL``). Each response
names the worker process that served it in ``X-Worker-Pid``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from tests import settings as test_settings

test_settings.DATABASES["default"]["NAME"] = os.environ["KEEL_RELIAB_DB_NAME"]
test_settings.KEEL.update(json.loads(os.environ.get("KEEL_RELIAB_KEEL", "{}")))

from django.core.wsgi import get_wsgi_application  # noqa: E402

django_application = get_wsgi_application()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    def with_pid(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        return start_response(status, [*headers, ("X-Worker-Pid", str(os.getpid()))], *exc_info)

    return django_application(environ, with_pid)
