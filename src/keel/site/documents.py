"""Cached objects as documents: how a kind of object is built and keyed (``CachedSource``),
kept in memory (``CachedInstance``) and written to a store (one JSON document).

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model
from django.utils import translation

from keel import compat
from keel.compat import ModelState
from keel.redis import make_key
from keel.site.codec import FORMAT, schema_id

T = TypeVar("T")

#: What ``decode_doc`` returns for a document that must not be served.
MISSING: Any = object()


def current_language() -> str:
    """The active language code, lower-cased (``LANGUAGE_CODE`` when none is active)."""
    return (translation.get_language() or settings.LANGUAGE_CODE).lower()


class CachedSource(Generic[T]):
    """How one kind of cached object of ``model`` is built, stored and handed out.

    ``build`` reads the database and returns ``(payload, cached value)``; ``from_payload`` turns
    a stored payload into a cached value; ``get_value`` makes what a caller receives from a
    cached value (a private copy for model instances).
    """

    kind = "doc"
    #: Write the document of the current language at publish time (singletons), instead of
    #: letting the next reader rebuild it.
    rebuild_on_publish = False

    #: Whether the object depends on the active language (a document per language).
    per_language = True
    #: The key of the default database's process copy when it is the same in every language
    #: (``per_language`` false, no part); ``None`` otherwise.
    default_lkey: tuple[Any, ...] | None = None

    #: The warm read's remembered verdict (see [`keel.site.cache.read`][keel.site.cache.read]):
    #: ``(value getter, changes count, deadline, language or None)``, or ``None``.
    hot: tuple[Callable[[], T], int, float, str | None] | None = None

    def __init__(self, model: type[Model]) -> None:
        self.model = compat.concrete_model(model)

    def build(self, alias: str, language: str, part: str | None) -> tuple[Any, Any]:
        raise NotImplementedError

    def build_for_publish(self, alias: str, language: str) -> tuple[Any, Any] | None:
        """Like [`build`][keel.models.mixins.StateGraph.build] without side effects; ``None`` when
        there is nothing to write."""
        return self.build(alias, language, None)

    def from_payload(self, alias: str, payload: Any) -> Any:
        raise NotImplementedError

    def get_value(self, cached: Any) -> T:
        return cached  # type: ignore[no-any-return]

    def value_getter(self, cached: Any) -> Callable[[], T]:
        """``get_value`` of ``cached`` as one call without arguments (the warm read's)."""
        return functools.partial(self.get_value, cached)

    def gen_key(self, alias: str) -> str:
        return generation_key(self.model, alias)

    def doc_key(self, alias: str, language: str, part: str | None) -> str:
        parts = ["site", "{" + self.model._meta.label_lower + "}", self.kind]
        parts += [schema_id(self.model), alias, language]
        if part is not None:
            parts.append(_key_part(part))
        return make_key(*parts)


def generation_key(model: type[Model], alias: str = DEFAULT_DB_ALIAS) -> str:
    """The store key holding the version of ``model`` (in database ``alias``) that the
    store's documents were built at."""
    concrete = compat.concrete_model(model)
    return make_key("site", "{" + concrete._meta.label_lower + "}", "gen", alias)


def _key_part(part: str) -> str:
    if len(part) <= 100 and part.isprintable() and not any(c.isspace() for c in part):
        return part
    return "h-" + hashlib.sha256(part.encode()).hexdigest()[:32]


def _copy(value: Any) -> Any:
    # JSON values are dicts, lists and scalars: copying those by hand is several times
    # cheaper than copy.deepcopy; anything else goes to deepcopy.
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return copy.deepcopy(value)


class CachedInstance:
    """A cached model instance, kept as the attribute values new copies are made from.

    ``get()`` returns a private copy: its own ``_state`` and its own mutable values
    (JSON values, mixins' bookkeeping), built without ``__init__``.
    """

    __slots__ = ("db", "get", "model", "mutable", "values")

    get: Callable[[], Model]

    def __init__(self, instance: Model) -> None:
        self.model = type(instance)
        self.db = instance._state.db
        self.values = {k: v for k, v in instance.__dict__.items() if k != "_state"}
        # Only these need a copy of their own per caller (JSON values, mixins' bookkeeping).
        self.mutable = tuple(
            k for k, v in self.values.items() if isinstance(v, dict | list | set | bytearray)
        )
        self.get = _copier(self.model, self.db, self.values, self.mutable)


def _copier(
    model: type[Model], db: str | None, values: dict[str, Any], mutable: tuple[str, ...]
) -> Callable[[], Model]:
    """The ``get`` of an ``CachedInstance``: every warm read calls it, so what it needs is
    bound here, once (a closure reads its variables faster than a method reads attributes)."""
    new_object = object.__new__

    def get_flat() -> Model:
        own = values.copy()
        state = own["_state"] = ModelState()
        state.db = db
        state.adding = False
        new = new_object(model)
        new.__dict__ = own
        return new

    if not mutable:
        return get_flat

    def get() -> Model:
        new = get_flat()
        own = new.__dict__
        for name in mutable:
            own[name] = _copy(own[name])
        return new

    return get


def encode_doc(source: CachedSource[Any], version: int, payload: Any) -> str:
    label = source.model._meta.label_lower
    doc = {"format": FORMAT, "model": label, "gen": version, "data": payload}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode_doc(source: CachedSource[Any], raw: bytes | str, version: int, alias: str) -> Any:
    """The cached value stored in ``raw``, or ``MISSING`` if it is stale, foreign or damaged."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return MISSING
    if (
        not isinstance(doc, dict)
        or doc.get("format") != FORMAT
        or doc.get("gen") != version
        or doc.get("model") != source.model._meta.label_lower
        or "data" not in doc
    ):
        return MISSING
    try:
        return source.from_payload(alias, doc["data"])
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError):
        # Damaged, or written by a version of the model this process does not know: a field's
        # to_python refusing a value means the same. Rebuild it.
        return MISSING
