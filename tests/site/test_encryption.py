"""Encrypted integration secrets: at rest, in caches, in templates, and key rotation."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import call_command
from django.core.serializers.base import DeserializationError
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory

from keel.site import DecryptionError, reencrypt
from keel.site.context_processors import site_settings
from keel.site.encryption import SERIALIZED_PREFIX, plaintext_dumps
from tests.testapp.models.site import SiteSettings

SECRET = "sk_live_51Hplaintext"


def stored_value(column: str = "stripe_secret_key") -> str:
    table = connection.ops.quote_name(SiteSettings._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name(column)} FROM {table}")
        return str(cursor.fetchone()[0])


def save_secret(value: str = SECRET) -> None:
    row = SiteSettings.objects.get()
    row.stripe_secret_key = value
    row.save()


@pytest.mark.django_db
def test_secrets_are_encrypted_in_the_database_and_decrypted_on_read() -> None:
    save_secret()
    assert SECRET not in stored_value()
    assert stored_value().startswith("gAAAA")  # a Fernet token
    assert SiteSettings.objects.get().stripe_secret_key == SECRET


@pytest.mark.django_db
def test_empty_secrets_stay_empty() -> None:
    save_secret("")
    assert stored_value() == ""
    assert SiteSettings.objects.get().stripe_secret_key == ""


@pytest.mark.django_db
def test_a_secret_written_with_an_unknown_key_raises_instead_of_returning_ciphertext(
    settings: Any,
) -> None:
    save_secret()
    settings.KEEL = {**settings.KEEL, "ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    with pytest.raises(DecryptionError, match="stripe_secret_key"):
        SiteSettings.objects.get()
    # Everything else still loads: the cache never carries secrets.
    assert SiteSettings.load().site_name == "keel"


@pytest.mark.django_db
def test_rotating_keys_keeps_old_values_readable_and_reencrypt_moves_them(settings: Any) -> None:
    old = settings.KEEL["ENCRYPTION_KEYS"][0]
    save_secret()
    new = Fernet.generate_key().decode()
    settings.KEEL = {**settings.KEEL, "ENCRYPTION_KEYS": [new, old]}
    assert SiteSettings.objects.get().stripe_secret_key == SECRET
    assert reencrypt(SiteSettings) == 1
    settings.KEEL = {**settings.KEEL, "ENCRYPTION_KEYS": [new]}
    assert SiteSettings.objects.get().stripe_secret_key == SECRET
    assert Fernet(new.encode()).decrypt(stored_value().encode()).decode() == SECRET


@pytest.mark.django_db
def test_without_configured_keys_secret_key_and_its_fallbacks_are_used(settings: Any) -> None:
    settings.KEEL = {k: v for k, v in settings.KEEL.items() if k != "ENCRYPTION_KEYS"}
    save_secret()
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key", [settings.SECRET_KEY]
    assert SiteSettings.objects.get().stripe_secret_key == SECRET
    reencrypt(SiteSettings)
    settings.SECRET_KEY_FALLBACKS = []
    assert SiteSettings.objects.get().stripe_secret_key == SECRET


@pytest.mark.django_db
def test_a_malformed_key_is_a_configuration_error_naming_the_setting(settings: Any) -> None:
    settings.KEEL = {**settings.KEEL, "ENCRYPTION_KEYS": ["x" * 44]}
    with pytest.raises(ImproperlyConfigured, match=r"ENCRYPTION_KEYS'\]\[0\]"):
        save_secret()


@pytest.mark.django_db
def test_lookups_on_ciphertext_are_refused() -> None:
    with pytest.raises(FieldError):
        list(SiteSettings.objects.filter(stripe_secret_key=SECRET))
    assert SiteSettings.objects.filter(stripe_secret_key__isnull=False).count() == 1


@pytest.mark.django_db(transaction=True)
def test_secrets_never_reach_redis(keel_redis: redis.Redis, settings: Any) -> None:
    save_secret()
    row = SiteSettings.objects.get()
    row.twilio_auth_token = "twilio-plaintext-token"
    row.save()
    assert SiteSettings.load().site_name == "keel"
    values = [keel_redis.get(k) or b"" for k in keel_redis.keys(settings.TEST_KEY_PREFIX + "*")]
    assert values
    assert not any(SECRET.encode() in v or b"twilio-plaintext" in v for v in values)
    assert not any(b"stripe_secret_key" in v for v in values)


@pytest.mark.django_db(transaction=True)
def test_a_cached_instance_reads_a_secret_from_the_database_on_access(
    keel_redis: redis.Redis,
) -> None:
    save_secret()
    cached = SiteSettings.load()
    assert "stripe_secret_key" in cached.get_deferred_fields()
    assert cached.stripe_secret_key == SECRET


@pytest.mark.django_db(transaction=True)
def test_saving_a_cached_instance_keeps_its_secrets(keel_redis: redis.Redis) -> None:
    save_secret()
    cached = SiteSettings.load()
    cached.phone = "123"
    cached.save()
    row = SiteSettings.objects.get()
    assert (row.phone, row.stripe_secret_key) == ("123", SECRET)


@pytest.mark.django_db(transaction=True)
def test_secrets_never_reach_a_template_context(keel_redis: redis.Redis) -> None:
    save_secret()
    request = RequestFactory().get("/")
    context = Context(site_settings(request))
    rendered = Template(
        "[{{ site_settings.stripe_secret_key }}]"
        "[{{ site_settings.to_dict.stripe_secret_key }}]"
        "[{{ site_settings.site_name }}]"
    ).render(context)
    assert rendered == "[][][keel]"
    assert SECRET not in rendered


def _dump() -> str:
    out = StringIO()
    call_command("dumpdata", "testapp.sitesettings", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_dumpdata_writes_secrets_as_ciphertext_and_loaddata_reads_them_back(
    tmp_path: Path,
) -> None:
    save_secret()
    dump = _dump()
    assert SECRET not in dump
    [row] = json.loads(dump)
    assert row["fields"]["stripe_secret_key"].startswith(SERIALIZED_PREFIX + "gAAAA")
    assert row["fields"]["stripe_webhook_secret"] == ""
    save_secret("replaced")
    fixture = tmp_path / "settings.json"
    fixture.write_text(dump)
    call_command("loaddata", str(fixture), verbosity=0)
    assert SiteSettings.objects.get().stripe_secret_key == SECRET
    assert stored_value().startswith("gAAAA")


@pytest.mark.django_db
def test_dumpdata_writes_plaintext_only_when_asked(tmp_path: Path) -> None:
    save_secret()
    with plaintext_dumps():
        dump = _dump()
    assert json.loads(dump)[0]["fields"]["stripe_secret_key"] == SECRET
    assert SECRET not in _dump()
    save_secret("replaced")
    fixture = tmp_path / "settings.json"
    fixture.write_text(dump)
    call_command("loaddata", str(fixture), verbosity=0)
    assert SiteSettings.objects.get().stripe_secret_key == SECRET
    assert SECRET not in stored_value()


@pytest.mark.django_db
def test_loading_a_dump_made_with_another_key_names_the_field(
    tmp_path: Path, settings: Any
) -> None:
    save_secret()
    dump = _dump()
    settings.KEEL = {**settings.KEEL, "ENCRYPTION_KEYS": [Fernet.generate_key().decode()]}
    fixture = tmp_path / "settings.json"
    fixture.write_text(dump)
    with pytest.raises(DeserializationError) as info:
        call_command("loaddata", str(fixture), verbosity=0)
    assert "SiteSettings.stripe_secret_key could not be decrypted" in str(info.value)
