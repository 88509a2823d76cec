"""Turning model instances into JSON-safe documents and back.

A document's ``data`` maps each published field's ``attname`` to a JSON value: strings, numbers,
booleans and ``null`` as they are; decimals, UUIDs, dates and times as strings; durations as
ISO 8601; binary data as base64; file fields as the stored file name (``null`` when empty);
foreign keys as the related id; ``JSONField`` values as they are (as the JSON text of the
field's own encoder and decoder when it has either); infinite and NaN floats as ``"inf"``,
``"-inf"``, ``"nan"``. Any other value (a
PostgreSQL ``ArrayField``, a third-party field's object) goes through the field's own
``value_to_string``, as Django's serializers do. Secret fields are left out. Decoding goes
through each field's ``to_python``, so a value comes back with its Python type.

``unpublishable_reason`` says which fields cannot make that round trip; keel's system
check ``keel.E008`` reports them.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import json
import math
import uuid
from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models
from django.db.models import Model
from django.db.models.fields.files import FieldFile

from keel.compat import duration_iso_string
from keel.site.encryption import is_secret_field

#: Version of the document layout; a change makes every stored document a miss.
FORMAT = 1

M = TypeVar("M", bound=Model)

_fields_cache: dict[type[Model], tuple[models.Field[Any, Any], ...]] = {}
_schema_cache: dict[type[Model], str] = {}


def published_fields(model: type[Model]) -> tuple[models.Field[Any, Any], ...]:
    """The concrete fields of ``model`` that may leave the database: all but the secrets."""
    try:
        return _fields_cache[model]
    except KeyError:
        fields = tuple(f for f in model._meta.concrete_fields if not is_secret_field(f))
        _fields_cache[model] = fields
        return fields


def secret_fields(model: type[Model]) -> tuple[models.Field[Any, Any], ...]:
    """The concrete secret fields of ``model``."""
    return tuple(f for f in model._meta.concrete_fields if is_secret_field(f))


def schema_id(model: type[Model]) -> str:
    """A short digest of the published fields: documents of another layout are never read."""
    try:
        return _schema_cache[model]
    except KeyError:
        digest = hashlib.sha256(f"{FORMAT}:{model._meta.label_lower}".encode())
        for f in published_fields(model):
            digest.update(f"|{f.attname}:{type(f).__module__}.{type(f).__qualname__}".encode())
        value = digest.hexdigest()[:10]
        _schema_cache[model] = value
        return value


#: Fields whose values keel encodes itself (exactly, and faster than ``value_to_string``).
EXACT_FIELDS: tuple[type[models.Field[Any, Any]], ...] = (
    models.BooleanField,
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.FloatField,
    models.DecimalField,
    models.DateField,
    models.TimeField,
    models.DurationField,
    models.UUIDField,
    models.BinaryField,
    models.FileField,
    models.JSONField,
    models.ForeignKey,
)
_TEXT_TYPES = frozenset({"CharField", "TextField", "SlugField", "EmailField", "URLField"})


def _exact(value: Any) -> Any:
    """The JSON form of a value of one of the ``EXACT_FIELDS``, or ``_NOT_EXACT``."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # "inf", "-inf", "nan": JSON has no such numbers; to_python reads them
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return duration_iso_string(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return _NOT_EXACT


_NOT_EXACT: Any = object()


def encode_value(field: models.Field[Any, Any], value: Any, instance: Model | None = None) -> Any:
    """The JSON-safe form of ``value`` for ``field`` (see the module docstring).

    Values keel does not encode itself go through ``field.value_to_string(instance)``; without
    ``instance`` they raise ``TypeError`` naming the field.
    """
    if value is None:
        return value
    if isinstance(field, models.JSONField):
        # With its own encoder or decoder, through the field's own JSON text.
        return json.dumps(value, cls=field.encoder) if _own_json(field) else value
    if isinstance(value, FieldFile):
        return value.name or None
    if isinstance(value, Model):
        return encode_value(field, value.pk)
    encoded = _exact(value)
    if encoded is not _NOT_EXACT:
        return encoded
    if instance is not None:
        return field.value_to_string(instance)
    raise TypeError(
        f"{field.model._meta.label}.{field.name}: cannot publish a {type(value).__name__}; "
        "mark the field secret=True or give it a JSON-safe value."
    )


def encode_instance(instance: Model) -> dict[str, Any]:
    """The document data of ``instance``: ``{attname: JSON value}`` of its published fields."""
    data: dict[str, Any] = {}
    for field in published_fields(type(instance)):
        data[field.attname] = encode_value(field, getattr(instance, field.attname), instance)
    return data


def _own_json(field: models.JSONField[Any]) -> bool:
    return field.encoder is not None or field.decoder is not None


def _django_defined(method: Any) -> bool:
    return str(getattr(method, "__module__", "")).startswith("django.")


def unpublishable_reason(field: models.Field[Any, Any]) -> str | None:
    """Why ``field`` cannot be published and read back with its type, or ``None``.

    A field keel does not encode itself is published as ``value_to_string()`` and read back
    with ``to_python()``. Django's base ``Field.to_python`` returns the text unchanged: that
    is a round trip only for fields whose values are text, and never for a field that turns
    database values into objects (``from_db_value``).
    """
    if is_secret_field(field):
        return None
    if isinstance(field, models.JSONField):
        if field.decoder is not None and field.encoder is None:
            return "its decoder may return values that JSON without an encoder cannot write"
        return None
    from_db_value = getattr(type(field), "from_db_value", None)
    if (
        from_db_value is not None
        and not _django_defined(from_db_value)
        and _django_defined(type(field).to_python)
    ):
        return "it turns database values into objects (from_db_value) but has no to_python"
    if isinstance(field, EXACT_FIELDS) or type(field).to_python is not models.Field.to_python:
        return None
    if field.get_internal_type() not in _TEXT_TYPES:
        return "its values are not text and it has no to_python to rebuild them from text"
    return None


def decode_instance(model: type[M], db: str, data: dict[str, Any]) -> M:
    """Rebuild an instance from document data; secret fields are left deferred."""
    fields = published_fields(model)
    names: list[str] = []
    values: list[Any] = []
    for field in fields:
        raw = data[field.attname]
        if raw is None or isinstance(field, models.FileField):
            value = raw
        elif isinstance(field, models.JSONField):
            value = json.loads(raw, cls=field.decoder) if _own_json(field) else raw
        elif isinstance(field, models.ForeignKey):
            value = field.target_field.to_python(raw)
        else:
            value = field.to_python(raw)
        names.append(field.attname)
        values.append(value)
    # ``from_db`` marks the concrete fields missing from ``names`` (the secrets) as deferred.
    return model.from_db(db, names, values)


def presentation_dict(instance: Model, names: Iterable[str] | None = None) -> dict[str, Any]:
    """``{field name: JSON value}``: like the document, but files as URLs (``None`` if empty).

    Foreign keys appear under the field's name with the related id as value.
    """
    wanted = set(names) if names is not None else None
    out: dict[str, Any] = {}
    for field in published_fields(type(instance)):
        if wanted is not None and field.name not in wanted:
            continue
        if field.attname in instance.get_deferred_fields():
            continue
        value = getattr(instance, field.attname)
        if isinstance(field, models.FileField):
            file = getattr(instance, field.name)
            out[field.name] = file.url if file else None
        else:
            out[field.name] = encode_value(field, value, instance)
    return out
