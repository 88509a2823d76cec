"""Settings of keel's test suite.

``KEEL_TEST_DB`` picks the database: ``sqlite`` (default), ``postgres`` or ``mysql``. Two
aliases, ``default`` and ``other``, exist so that ``using=`` is tested. Test database names
carry ``KEEL_TEST_DB_SUFFIX`` so that several runs can share one server.

Redis is off by default (keel's embedded mode); the ``keel_redis`` fixture of
``tests/conftest.py`` turns it on for a test, on ``KEEL_TEST_REDIS_URL`` under a key prefix
unique to the run.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent

DB = os.environ.get("KEEL_TEST_DB", "sqlite")
SUFFIX = os.environ.get("KEEL_TEST_DB_SUFFIX", "")


def on_server(engine: str, name: str, **defaults: str) -> dict[str, Any]:
    """A database on a server; each of ``defaults`` (``USER``, ``HOST``, ...) is overridden by
    the environment variable ``KEEL_TEST_<name>_<key>``."""
    given = {
        key: os.environ.get(f"KEEL_TEST_{name}_{key}", value) for key, value in defaults.items()
    }
    return {"ENGINE": f"django.db.backends.{engine}", "NAME": "test", **given}


def database(alias: str) -> dict[str, Any]:
    test_name = f"test_keel_{alias}{SUFFIX}"
    if DB == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(Path(tempfile.gettempdir()) / f"keel_{alias}{SUFFIX}.sqlite3"),
            # A file, not memory: tests that race several processes need to share it.
            "TEST": {"NAME": str(Path(tempfile.gettempdir()) / f"{test_name}.sqlite3")},
        }
    if DB == "postgres":
        pg = on_server("postgresql", "PG", USER="postgres", HOST="127.0.0.1", PORT="5432")
        return {**pg, "TEST": {"NAME": test_name}}
    if DB == "mysql":
        my = on_server("mysql", "MYSQL", USER="root", PASSWORD="", HOST="127.0.0.1", PORT="3306")
        return {
            **my,
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"NAME": test_name, "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    raise RuntimeError(f"KEEL_TEST_DB must be sqlite, postgres or mysql, got {DB!r}")


DATABASES = {"default": database("default"), "other": database("other")}

TEST_REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TEST_KEY_PREFIX = f"keeltest-{uuid.uuid4().hex[:10]}"

SECRET_KEY = "keel-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = True
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French"), ("de", "German")]
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "keel",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

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
                "keel.site.context_processors.site_settings",
                "keel.site.context_processors.static_content",
            ]
        },
    }
]

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Shared between processes (files), for the site settings tests without Redis.
    "keel_shared": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(Path(tempfile.gettempdir()) / f"keel-test-cache{SUFFIX}"),
    },
}

STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = str(Path(tempfile.gettempdir()) / f"keel-test-media{SUFFIX}")

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

KEEL: dict[str, Any] = {
    "KEY_PREFIX": TEST_KEY_PREFIX,
    # A fixed test key for encrypted fields (never use it anywhere else).
    "ENCRYPTION_KEYS": ["Y2VsbC1rZWVsLXRlc3RzLW5vdC1zZWNyZXQtMDAwMDA="],
}

# The suite runs in one process: a per-process cache is what it wants.
SILENCED_SYSTEM_CHECKS = ["keel.W002"]
