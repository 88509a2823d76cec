"""Encrypted model fields for integration secrets, built on ``cryptography``'s Fernet.

A value is stored as a Fernet token (AES-128-CBC with an HMAC-SHA256, a timestamp and a random IV)
in a text column. Keys come from ``KEEL["ENCRYPTION_KEYS"]`` (newest first), or, when that list is
empty, are derived with HKDF-SHA256 from ``SECRET_KEY`` followed by ``SECRET_KEY_FALLBACKS``. The
first key encrypts, every key decrypts (``MultiFernet``), so a key is rotated by putting the new one
first, running [`reencrypt`][keel.site.encryption.reencrypt] and then dropping the old one.

A value that no configured key can decrypt raises
[`DecryptionError`][keel.site.encryption.DecryptionError]; it is never handed back as ciphertext.
Encrypted fields are secret: keel never publishes them to a cache, never puts them in a template
context and masks them in the admin.

Serializers (``dumpdata``, ``serializers.serialize``) write a secret as
``"keel-fernet:<token>"``, a fresh token under the first key, never in clear; ``loaddata``
decrypts such a value back (and takes plaintext as it is). Inside
``with plaintext_dumps():`` serializers write the plaintext instead.
"""

from __future__ import annotations

import base64
import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, router, transaction
from django.db.models import Model

from keel.conf import keel_settings
from keel.exceptions import KeelError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = [
    "DecryptionError",
    "EncryptedCharField",
    "EncryptedTextField",
    "reencrypt",
]

SERIALIZED_PREFIX = "keel-fernet:"
"""Marks an encrypted value in serialized data (``dumpdata`` output, fixtures)."""

_plaintext_dumps: ContextVar[bool] = ContextVar("keel_plaintext_dumps", default=False)


@contextlib.contextmanager
def plaintext_dumps() -> Iterator[None]:
    """Let serializers write encrypted fields in clear inside the block (this context only).

    ``call_command("dumpdata", ...)`` inside it writes plaintext secrets: keep that output
    as safe as the keys themselves.
    """
    token = _plaintext_dumps.set(True)
    try:
        yield
    finally:
        _plaintext_dumps.reset(token)


_HKDF_INFO = b"keel.site.encrypted-fields"


class DecryptionError(KeelError):
    """A stored secret could not be decrypted with any configured key."""


def _derive(secret: str) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"keel", info=_HKDF_INFO).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(key)


@functools.lru_cache(maxsize=8)
def _build_fernet(configured: tuple[str, ...], secrets: tuple[str, ...]) -> MultiFernet:
    if configured:
        keys: list[Fernet] = []
        for index, key in enumerate(configured):
            try:
                keys.append(Fernet(key))
            except (ValueError, TypeError) as exc:
                raise ImproperlyConfigured(
                    f"KEEL['ENCRYPTION_KEYS'][{index}] is not a Fernet key ({exc}); make one "
                    "with: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'"
                ) from exc
        return MultiFernet(keys)
    if not secrets or not secrets[0]:
        raise ImproperlyConfigured(
            "Encrypted fields need KEEL['ENCRYPTION_KEYS'] or a non-empty SECRET_KEY."
        )
    return MultiFernet([Fernet(_derive(secret)) for secret in secrets if secret])


def get_fernet() -> MultiFernet:
    """The ``MultiFernet`` of the current settings (built once per distinct configuration)."""
    fallbacks = tuple(str(s) for s in getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    return _build_fernet(
        tuple(keel_settings.ENCRYPTION_KEYS), (str(settings.SECRET_KEY), *fallbacks)
    )


def is_secret_field(field: Any) -> bool:
    """Whether ``field`` holds a secret (an encrypted field, or one marked ``secret=True``)."""
    return bool(getattr(field, "secret", False))


class EncryptedFieldMixin:
    """Encrypts on the way to the database and decrypts on the way back.

    ``None`` and ``""`` are stored as they are, so "not set" is visible without a key. Only the
    ``isnull`` lookup is allowed: ciphertext is randomised, so comparing it means nothing.
    """

    secret = True

    def get_internal_type(self) -> str:
        return "TextField"

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)  # type: ignore[misc]
        if value is None or value == "":
            return value
        return get_fernet().encrypt(str(value).encode()).decode()

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        if value is None or value == "":
            return value
        return self._decrypt(str(value))

    def _decrypt(self, token: str) -> str:
        try:
            return get_fernet().decrypt(token.encode()).decode()
        except InvalidToken as exc:
            field = self  # for the message
            raise DecryptionError(
                f"{field.model._meta.label}.{field.name} could not be decrypted with the "  # type: ignore[attr-defined]
                "configured keys: add the key it was written with to KEEL['ENCRYPTION_KEYS'] "
                "(or SECRET_KEY_FALLBACKS)."
            ) from exc

    def value_to_string(self, obj: Model) -> str:
        """A fresh token behind ``SERIALIZED_PREFIX``, or plaintext inside ``plaintext_dumps``."""
        value = self.value_from_object(obj)  # type: ignore[attr-defined]
        if value is None or value == "" or _plaintext_dumps.get():
            return super().value_to_string(obj)  # type: ignore[misc,no-any-return]
        return SERIALIZED_PREFIX + get_fernet().encrypt(str(value).encode()).decode()

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(SERIALIZED_PREFIX):
            return self._decrypt(value.removeprefix(SERIALIZED_PREFIX))
        return super().to_python(value)  # type: ignore[misc]

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)  # type: ignore[misc]


class EncryptedCharField(EncryptedFieldMixin, models.CharField):  # type: ignore[type-arg]
    """A secret ``CharField``; ``max_length`` limits the plaintext (the column is text)."""


class EncryptedTextField(EncryptedFieldMixin, models.TextField):  # type: ignore[type-arg]
    """A secret ``TextField``."""


def reencrypt(model: type[Model], *, using: str | None = None) -> int:
    """Rewrite every encrypted value of ``model`` with the newest key; return the rows written.

    Run it after putting a new key first, before removing the old one. It runs in one
    transaction and reads through the model's base manager.
    """
    names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedFieldMixin)]
    if not names:
        return 0
    alias = using or router.db_for_write(model)
    written = 0
    with transaction.atomic(using=alias):
        manager = model._base_manager.using(alias)
        for row in manager.select_for_update().values("pk", *names):
            pk = row.pop("pk")
            # The values were decrypted on read; writing them encrypts with the first key.
            manager.filter(pk=pk).update(**row)
            written += 1
    return written
