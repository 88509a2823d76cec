"""State binding: a token dies when the state of what it protects changes.

Like Django's ``PasswordResetTokenGenerator``, a bound token carries a fingerprint of its
subject's state: a keyed digest of some fields of one model instance, found through the
payload. Peek and consume recompute it from the database and refuse the token (``None``) when
it differs: a password reset link dies once the password changes, an e-mail change link once
the address changes, a magic link once the user logs in.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import models, router

from keel.tokens.keys import keyed_digest, project_secrets

__all__ = ["StateBinding", "UserStateBinding"]

STATE_SALT = "keel.tokens.state"
#: Length of the fingerprint written before a bound token's JSON document.
FINGERPRINT_LENGTH = 64


class StateBinding:
    """Bind tokens to ``fields`` of the ``model`` instance named by the payload.

    ``model`` is a model class or an ``"app_label.ModelName"`` string (resolved on first use,
    so a binding can be built at import time). The instance is the one whose ``lookup`` field
    (by default the primary key) equals ``payload[payload_key]``. ``fields`` are field names
    of ``model``; their values, as ``Field.value_to_string`` writes them, make the state.
    The instance is read from the database at creation and at every peek and consume (one
    ``SELECT`` each), on ``using`` (by default the router's read database).
    """

    def __init__(
        self,
        model: type[models.Model] | str,
        fields: Sequence[str],
        *,
        payload_key: str,
        lookup: str = "pk",
        using: str | None = None,
    ) -> None:
        if isinstance(fields, str) or not fields:
            raise ValueError(f"fields must be a non-empty sequence of field names, got {fields!r}.")
        self._model = model
        self._fields = tuple(fields)
        self.payload_key = payload_key
        self.lookup = lookup
        self.using = using

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model._meta.label}, {self.field_names()!r})"

    @property
    def model(self) -> type[models.Model]:
        """The bound model class."""
        if isinstance(self._model, str):
            try:
                self._model = apps.get_model(self._model)
            except (LookupError, ValueError) as exc:
                raise ImproperlyConfigured(
                    f"{type(self).__name__}: {self._model!r} is not an installed model."
                ) from exc
        return self._model

    def field_names(self) -> tuple[str, ...]:
        """The names of the fields whose values make the state."""
        return self._fields

    def fields(self) -> list[models.Field[Any, Any]]:
        """The model fields of [`field_names`][keel.tokens.state.StateBinding.field_names];
        ``ImproperlyConfigured`` for a wrong name."""
        meta = self.model._meta
        try:
            return [meta.get_field(name) for name in self.field_names()]  # type: ignore[misc]
        except FieldDoesNotExist as exc:
            raise ImproperlyConfigured(f"{type(self).__name__}: {exc}") from exc

    def key_of(self, payload: Mapping[str, Any]) -> Any:
        """The value that names the instance; ``KeyError`` if the payload lacks it."""
        return payload[self.payload_key]

    def _rows(self, payload: Mapping[str, Any]) -> models.QuerySet[models.Model] | None:
        # Read where writes go: a lagging replica would still show the state before a change
        # (the old password hash) and keep alive a token that change must kill.
        using = self.using or router.db_for_write(self.model)
        try:
            return self.model._default_manager.using(using).filter(
                **{self.lookup: self.key_of(payload)}
            )
        except (ValueError, TypeError, ValidationError):
            return None  # a key of the wrong type ("ada" for an integer key) names no instance

    def get_instance(self, payload: Mapping[str, Any]) -> models.Model | None:
        """The instance the payload names, or ``None`` if there is none (any more).

        Read from the router's write database (or ``using``), never a replica.
        """
        rows = self._rows(payload)
        return None if rows is None else rows.first()

    async def aget_instance(self, payload: Mapping[str, Any]) -> models.Model | None:
        """Async [`get_instance`][keel.tokens.state.StateBinding.get_instance]."""
        rows = self._rows(payload)
        return None if rows is None else await rows.afirst()

    def fingerprint(
        self, instance: models.Model, purpose: str, secret: str | bytes | None = None
    ) -> str:
        """64 hex characters: a keyed digest of the purpose and the state of ``instance``."""
        # NULL stays null: value_to_string would write it as "None", the state of that string.
        values = [
            None if field.value_from_object(instance) is None else field.value_to_string(instance)
            for field in self.fields()
        ]
        state = json.dumps([self.model._meta.label, *values], ensure_ascii=False)
        return keyed_digest(STATE_SALT, f"{purpose}\0{state}", secret)

    def matches(self, instance: models.Model | None, purpose: str, fingerprint: str) -> bool:
        """Whether ``fingerprint`` is the state of ``instance`` under any of the project's keys."""
        if instance is None:
            return False
        return any(
            hmac.compare_digest(fingerprint, self.fingerprint(instance, purpose, secret))
            for secret in project_secrets()
        )


class UserStateBinding(StateBinding):
    """Bind tokens to a user's password hash, last login and e-mail address.

    The user is ``settings.AUTH_USER_MODEL`` with primary key ``payload[payload_key]``. A
    token so bound dies when the password changes (a reset used, or changed elsewhere), when
    the user logs in (``last_login`` moves), or when the e-mail address changes.
    """

    def __init__(self, payload_key: str = "user_id", *, using: str | None = None) -> None:
        super().__init__(
            settings.AUTH_USER_MODEL,
            ("password", "last_login"),
            payload_key=payload_key,
            using=using,
        )

    def field_names(self) -> tuple[str, ...]:
        email = self.model.get_email_field_name()  # type: ignore[attr-defined]
        return (*super().field_names(), str(email))
