from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from keel.conf import SETTINGS, keel_settings


def test_import_keel_needs_no_django() -> None:
    code = "import sys, keel; assert 'django' not in sys.modules; print(keel.__version__)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env={}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_defaults_apply_when_keel_is_unset(settings: Any) -> None:
    del settings.KEEL
    # Deleting a setting through pytest-django sends no setting_changed.
    keel_settings.reload()
    assert keel_settings.KEY_PREFIX.startswith("keel-")  # derived from the default database
    assert keel_settings.REDIS_URL is None


def test_values_are_read_at_access_time() -> None:
    with override_settings(KEEL={"KEY_PREFIX": "first"}):
        assert keel_settings.KEY_PREFIX == "first"
        with override_settings(KEEL={"KEY_PREFIX": "second"}):
            assert keel_settings.KEY_PREFIX == "second"
        assert keel_settings.KEY_PREFIX == "first"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REDIS_URL", "http://example.com", "Set KEEL['REDIS_URL'] to a redis://"),
        ("TOKEN_DEFAULT_TTL", 0, "Set KEEL['TOKEN_DEFAULT_TTL'] to a positive number"),
        ("TOKEN_MAX_TTL", float("inf"), "Set KEEL['TOKEN_MAX_TTL'] to a finite"),
        ("SITE_SETTINGS_LOCAL_TTL", -1, "Set KEEL['SITE_SETTINGS_LOCAL_TTL'] to a number"),
        ("FIXTURE_BATCH_SIZE", 1.5, "Set KEEL['FIXTURE_BATCH_SIZE'] to a positive integer"),
        ("TOKEN_STORE", "memcached", "Set KEEL['TOKEN_STORE'] to one of 'auto'"),
        ("KEY_PREFIX", "has space", "Set KEEL['KEY_PREFIX'] to a non-empty string"),
        ("REDIS_OPTIONS", ["x"], "Set KEEL['REDIS_OPTIONS'] to a dict"),
    ],
)
def test_wrong_value_raises_improperly_configured_naming_the_key(
    name: str, value: object, expected: str
) -> None:
    with override_settings(KEEL={name: value}), pytest.raises(ImproperlyConfigured) as info:
        keel_settings.get(name)
    assert str(info.value).startswith(expected)
    assert repr(value) in str(info.value)


def test_keel_must_be_a_dict() -> None:
    with override_settings(KEEL="redis://x"), pytest.raises(ImproperlyConfigured, match="dict"):
        keel_settings.get("REDIS_URL")


def test_every_setting_has_a_typed_property(settings: Any) -> None:
    for name, spec in SETTINGS.items():
        expected = settings.KEEL.get(name, spec.default)
        assert getattr(keel_settings, name) == expected, name


def test_every_reload_counts_in_the_version() -> None:
    before = keel_settings.version
    with override_settings(KEEL={"KEY_PREFIX": "first"}):
        during = keel_settings.version
        assert during > before
        keel_settings.reload()
        assert keel_settings.version > during
