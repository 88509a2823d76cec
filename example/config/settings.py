"""Settings of keel's example project: SQLite by default, Redis when REDIS_URL is set.

Environment variables (all optional): ``REDIS_URL``, ``KEEL_KEY_PREFIX``, ``EXAMPLE_DB`` (the
SQLite file), ``EXAMPLE_ADMIN_PASSWORD_FILE``, ``EXAMPLE_EMAIL_DIR`` (write emails to files
there instead of the console), ``EXAMPLE_ENCRYPTION_KEY``, ``DJANGO_SECRET_KEY``,
``DJANGO_DEBUG``.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

# --8<-- [start:apps]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "keel",
    "system",
    "newsletter",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # One request memo: every read of the site settings in a request costs nothing after
    # the first.
    "keel.site.middleware.RequestCacheMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Answers 503 while SiteSettings.maintenance_mode is on (staff and the admin pass).
    "keel.site.middleware.MaintenanceModeMiddleware",
]

# --8<-- [end:apps]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # {{ site_settings.site_name }} and {{ static_content.footer }}, read lazily.
                "keel.site.context_processors.site_settings",
                "keel.site.context_processors.static_content",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

# Without Redis, a database cache shares published site settings between processes.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "example_cache",
    }
}

# --8<-- [start:keel]
KEEL = {
    # Unset: tokens live in the database and site settings in the cache above.
    "REDIS_URL": os.environ.get("REDIS_URL") or None,
    "KEY_PREFIX": os.environ.get("KEEL_KEY_PREFIX", "example"),
    # A key for this example only, committed so the demo runs anywhere. A real project reads
    # its keys from the environment (make one with Fernet.generate_key()).
    "ENCRYPTION_KEYS": [
        os.environ.get("EXAMPLE_ENCRYPTION_KEY", "WooqnpnKih3C85Y9EPIpwbfU0AMQ7PypPrDFMLxxIgI=")
    ],
}
# --8<-- [end:keel]

# Emails (the newsletter's confirmation link) go to the console of `make serve`.
if os.environ.get("EXAMPLE_EMAIL_DIR"):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = os.environ["EXAMPLE_EMAIL_DIR"]
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "keel example <noreply@example.com>"

# Where `manage.py demo` writes the admin password it generated (git-ignored).
ADMIN_PASSWORD_FILE = Path(
    os.environ.get("EXAMPLE_ADMIN_PASSWORD_FILE", str(BASE_DIR / ".admin-password"))
)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "media"
