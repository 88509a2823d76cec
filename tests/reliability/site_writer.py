"""A short-lived process that writes the site settings and exits (another process of the
project, e.g. a management command).

Environment: ``KEEL_SITE_WRITER``, a JSON object with ``db`` (the test database's name),
``keel`` (the ``KEEL`` setting) and ``phone`` (the value to save).
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from tests import settings as test_settings

config = json.loads(os.environ["KEEL_SITE_WRITER"])
test_settings.DATABASES["default"]["NAME"] = config["db"]
test_settings.KEEL = config["keel"]

import django  # noqa: E402

django.setup()

from tests.testapp.models.site import SiteSettings  # noqa: E402

row = SiteSettings.objects.get()
row.phone = config["phone"]
row.save()
