"""The manager's promises that hold before any I/O: TTLs, payloads, purposes, store choice."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test.utils import CaptureQueriesContext, override_settings

from keel.exceptions import KeelError
from keel.tokens import (
    DatabaseTokenStore,
    InvalidPayload,
    InvalidToken,
    JsonActionTokenDatabaseManager,
    JsonActionTokenManager,
    JsonActionTokenRedisManager,
    RedisTokenStore,
    TokenError,
    TokenStoreUnavailable,
    get_json_action_token_manager,
)

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def manager() -> JsonActionTokenDatabaseManager:
    return JsonActionTokenDatabaseManager(prefix="test:manager")


def assert_nothing_stored_or_asked(run: Any) -> None:
    """``run()`` raises before any query; with a dead Redis it would raise something else."""
    with CaptureQueriesContext(connections["default"]) as queries:
        run()
    assert len(queries) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl_seconds": 0}, "must be between 1 and"),
        ({"ttl_seconds": -1}, "must be between 1 and"),
        ({"ttl_seconds": -0.5}, "must be between 1 and"),
        ({"ttl_seconds": math.nan}, "must be between 1 and"),
        ({"ttl_seconds": math.inf}, "must be between 1 and"),
        ({"ttl_hours": 0}, "must be between 1 and"),
        ({"ttl_hours": -2}, "must be between 1 and"),
        ({"ttl_hours": math.nan}, "must be between 1 and"),
        ({"ttl_seconds": 0.5}, "must be between 1 and"),
        ({"ttl_seconds": 30 * 86400 + 1}, "TOKEN_MAX_TTL"),
        ({"ttl_hours": 10**9}, "TOKEN_MAX_TTL"),
        ({"ttl_seconds": 10, "ttl_hours": 1}, "not both"),
    ],
)
def test_bad_ttls_are_value_errors_before_any_io(
    manager: JsonActionTokenManager, kwargs: dict[str, Any], message: str
) -> None:
    for candidate in (manager, JsonActionTokenRedisManager(prefix="test:manager")):
        with override_settings(KEEL={"REDIS_URL": DEAD_REDIS}):

            def create(m: JsonActionTokenManager = candidate) -> None:
                with pytest.raises(ValueError, match=message):
                    m.create_token({"a": 1}, **kwargs)

            assert_nothing_stored_or_asked(create)


@pytest.mark.parametrize("ttl", [True, "60", [60], b"60"])
def test_non_numeric_ttls_are_type_errors(manager: JsonActionTokenManager, ttl: Any) -> None:
    with pytest.raises(TypeError, match="ttl_seconds must be a number"):
        manager.create_token({"a": 1}, ttl_seconds=ttl)


def test_ttl_resolution() -> None:
    manager = JsonActionTokenManager(prefix="p")
    assert manager.resolve_ttl(ttl_seconds=90) == 90
    assert manager.resolve_ttl(ttl_hours=0.5) == 1800
    assert manager.resolve_ttl(ttl_seconds=1.25) == 1.25
    assert manager.resolve_ttl() == 86400
    with override_settings(KEEL={"TOKEN_DEFAULT_TTL": 600, "TOKEN_MAX_TTL": 3600}):
        assert manager.resolve_ttl() == 600
        with pytest.raises(
            ValueError,
            match="between 1 and 3,600 s \\(KEEL\\['TOKEN_MAX_TTL'\\]\\), got ttl_hours=2",
        ):
            manager.resolve_ttl(ttl_hours=2)


def test_class_default_ttl_overrides_the_setting_and_is_checked() -> None:
    class Short(JsonActionTokenManager):
        default_ttl_seconds = 120

    class Forever(JsonActionTokenManager):
        default_ttl_seconds = 10**12

    assert Short(prefix="p").resolve_ttl() == 120
    with pytest.raises(ValueError, match="default_ttl_seconds"):
        Forever(prefix="p").resolve_ttl()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "is a dict"),
        ("text", "is a dict"),
        (None, "is a dict"),
        ({"obj": object()}, "cannot be written as JSON"),
        ({"nan": math.nan}, "cannot be written as JSON"),
        ({"surrogate": "\ud800"}, "cannot be written as JSON"),
        ({"big": "x" * 20_000}, "TOKEN_MAX_PAYLOAD_BYTES"),
    ],
)
def test_bad_payloads_are_refused_before_any_io(
    manager: JsonActionTokenManager, payload: Any, message: str
) -> None:
    def create() -> None:
        with pytest.raises(InvalidPayload, match=message):
            manager.create_token(payload)

    assert_nothing_stored_or_asked(create)


def test_invalid_payload_is_a_value_error_and_a_keel_error() -> None:
    assert issubclass(InvalidPayload, ValueError)
    for error in (InvalidPayload, InvalidToken, TokenStoreUnavailable):
        assert issubclass(error, TokenError)
        assert issubclass(error, KeelError)


def test_payload_size_limit_counts_utf8_bytes(manager: JsonActionTokenManager) -> None:
    with override_settings(KEEL={"TOKEN_MAX_PAYLOAD_BYTES": 20}):
        # {"t":"ééééé"}: 13 characters, 18 bytes; with eleven letters: 19 characters, 30 bytes.
        manager.create_token({"t": "ééééé"})
        with pytest.raises(InvalidPayload, match="30 bytes of JSON, more than"):
            manager.create_token({"t": "ééééééééééé"})


def test_validate_payload_is_the_subclass_hook() -> None:
    class EmailChange(JsonActionTokenDatabaseManager):
        def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
            data = super().validate_payload(payload)
            if set(data) != {"user_id", "email"}:
                raise InvalidPayload("An email change needs user_id and email.")
            return data

    manager = EmailChange(prefix="email:change")
    token = manager.create_token({"user_id": 1, "email": "new@example.com"})
    assert manager.consume_token(token) == {"user_id": 1, "email": "new@example.com"}
    with pytest.raises(InvalidPayload, match="needs user_id and email"):
        manager.create_token({"user_id": 1})


@pytest.mark.parametrize("prefix", ["", " ", "a b", "x" * 101, "tab\there", "new\nline"])
def test_bad_prefixes_are_value_errors(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        JsonActionTokenManager(prefix=prefix)


def test_prefix_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="prefix must be a str"):
        JsonActionTokenManager(prefix=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("subject", "error"),
    [("", ValueError), ("s" * 256, ValueError), (True, TypeError), (1.5, TypeError)],
)
def test_bad_subjects_are_refused(
    manager: JsonActionTokenManager, subject: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="subject"):
        manager.create_token({"a": 1}, subject=subject)
    with pytest.raises(error, match="subject"):
        manager.revoke_subject(subject)


def test_make_token_is_43_url_safe_characters_and_stores_nothing(
    manager: JsonActionTokenManager,
) -> None:
    with CaptureQueriesContext(connections["default"]) as queries:
        tokens = {manager.make_token() for _ in range(100)}
    assert len(queries) == 0
    assert len(tokens) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in tokens)
    assert all(manager.is_well_formed(t) for t in tokens)


def test_token_length_follows_token_bytes() -> None:
    class Short(JsonActionTokenManager):
        token_bytes = 16

    manager = Short(prefix="p")
    token = manager.make_token()
    assert len(token) == Short.token_length() == 22
    assert manager.is_well_formed(token)
    assert not manager.is_well_formed(JsonActionTokenManager(prefix="p").make_token())


def test_too_short_tokens_are_refused() -> None:
    class Weak(JsonActionTokenManager):
        token_bytes = 8

    with pytest.raises(
        ValueError, match=r"Weak.token_bytes must be at least 16 \(128 random bits\)"
    ):
        Weak(prefix="p")


def test_digest_depends_on_purpose_and_is_64_hex() -> None:
    first, second = JsonActionTokenManager(prefix="a"), JsonActionTokenManager(prefix="b")
    token = first.make_token()
    assert re.fullmatch(r"[0-9a-f]{64}", first.digest(token))
    assert first.digest(token) != second.digest(token)
    assert token not in first.digest(token)


def test_auto_store_is_the_database_without_redis_url() -> None:
    with override_settings(KEEL={}):
        assert isinstance(JsonActionTokenManager().get_store(), DatabaseTokenStore)


def test_auto_store_is_redis_when_redis_url_is_set() -> None:
    with override_settings(KEEL={"REDIS_URL": DEAD_REDIS}):
        assert isinstance(JsonActionTokenManager().get_store(), RedisTokenStore)


def test_explicit_token_store_setting_wins() -> None:
    manager = JsonActionTokenManager()
    with override_settings(KEEL={"REDIS_URL": DEAD_REDIS, "TOKEN_STORE": "database"}):
        assert isinstance(manager.get_store(), DatabaseTokenStore)
    with override_settings(KEEL={"TOKEN_STORE": "redis"}):
        assert isinstance(manager.get_store(), RedisTokenStore)
        with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
            manager.create_token({"a": 1})


def test_store_is_chosen_per_call_so_module_level_managers_follow_settings() -> None:
    manager = get_json_action_token_manager(prefix="module:level")
    assert isinstance(manager, JsonActionTokenManager)
    assert manager.prefix == manager.purpose == "module:level"
    with override_settings(KEEL={"REDIS_URL": DEAD_REDIS}):
        assert isinstance(manager.get_store(), RedisTokenStore)
    assert isinstance(manager.get_store(), DatabaseTokenStore)


def test_fixed_store_managers_ignore_the_setting() -> None:
    with override_settings(KEEL={"TOKEN_STORE": "database", "REDIS_URL": DEAD_REDIS}):
        assert isinstance(JsonActionTokenRedisManager().get_store(), RedisTokenStore)
    with override_settings(KEEL={"TOKEN_STORE": "redis", "REDIS_URL": DEAD_REDIS}):
        assert isinstance(JsonActionTokenDatabaseManager().get_store(), DatabaseTokenStore)


def test_default_prefix_is_the_seed_one_and_repr_names_it() -> None:
    manager = JsonActionTokenRedisManager()
    assert manager.prefix == "auth:action"
    assert repr(manager) == "JsonActionTokenRedisManager(prefix='auth:action')"


def test_a_stored_document_that_is_not_an_object_reads_as_none(
    manager: JsonActionTokenManager, caplog: pytest.LogCaptureFixture
) -> None:
    assert manager.decode_payload("[1, 2]") is None
    assert manager.decode_payload("{not json") is None
    assert manager.decode_payload(None) is None
    assert "not a JSON object" in caplog.text


def test_digests_are_django_salted_hmacs_of_the_secret() -> None:
    from django.conf import settings
    from django.utils.crypto import salted_hmac

    manager = JsonActionTokenManager(prefix="p")
    token = manager.make_token()
    expected = salted_hmac(
        "keel.tokens.token", f"p\0{token}", secret=settings.SECRET_KEY, algorithm="sha256"
    )
    assert manager.digest(token) == expected.hexdigest()
    assert manager.digest(token, "another") != manager.digest(token)


@pytest.mark.parametrize(
    "secret",
    [None, "short", "é" * 100, b"\xff" * 200, b""],
    ids=["SECRET_KEY", "short", "long-text", "long-bytes", "empty"],
)
@pytest.mark.parametrize("message", ["", "p\0token", "josé\0" * 50])
def test_keyed_digest_is_salted_hmac_for_every_secret_and_message(
    secret: str | bytes | None, message: str
) -> None:
    from django.conf import settings
    from django.utils.crypto import salted_hmac

    from keel.tokens.keys import keyed_digest

    key = settings.SECRET_KEY if secret is None else secret
    expected = salted_hmac("keel.tokens.any", message, secret=key, algorithm="sha256")
    assert keyed_digest("keel.tokens.any", message, secret) == expected.hexdigest()


def test_a_stored_document_with_anything_after_the_object_reads_as_none(
    manager: JsonActionTokenManager,
) -> None:
    assert manager.decode_payload('{"a":1}') == {"a": 1}
    assert manager.decode_payload('{"a":1} {"b":2}') is None
    assert manager.decode_payload('{"a":1}x') is None


@pytest.mark.parametrize("depth", [0, 101, 1000, True, 2.5])
def test_max_payload_depth_is_bounded_so_that_documents_always_decode(depth: Any) -> None:
    class Deep(JsonActionTokenManager):
        max_payload_depth = depth

    with pytest.raises(ValueError, match=r"Deep.max_payload_depth must be an int from 1 to 100"):
        Deep(prefix="p")


def test_max_payload_depth_up_to_the_bound_is_accepted() -> None:
    class Deepest(JsonActionTokenManager):
        max_payload_depth = 100

    assert Deepest(prefix="p").max_payload_depth == 100


# -- what the hot path keeps between calls ----------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "p\0", "josé\0"])
def test_a_keyed_hasher_digests_its_prefix_then_each_message(prefix: str) -> None:
    from django.utils.crypto import salted_hmac

    from keel.tokens.keys import keyed_hasher

    hasher = keyed_hasher("keel.tokens.any", "a secret", prefix)
    for message in ["", "token", "é" * 100]:
        expected = salted_hmac(
            "keel.tokens.any", prefix + message, secret="a secret", algorithm="sha256"
        )
        assert hasher(message) == expected.hexdigest()


ANOTHER_SECRET = "another secret key, long enough for Django's checks"


def test_digests_follow_the_secret_and_the_purpose_when_they_change() -> None:
    from django.conf import settings
    from django.utils.crypto import salted_hmac

    def expected(purpose: str, secret: str) -> str:
        message = f"{purpose}\0{token}"
        return salted_hmac("keel.tokens.token", message, secret, algorithm="sha256").hexdigest()

    manager = JsonActionTokenManager(prefix="p")
    token = manager.random_token()
    first = manager.digest(token)
    with override_settings(SECRET_KEY=ANOTHER_SECRET):
        assert manager.digest(token) == expected("p", ANOTHER_SECRET)
    assert manager.digest(token) == first
    manager.prefix = "q"
    assert manager.digest(token) == expected("q", settings.SECRET_KEY)
    assert manager.digest(token, "explicit") == expected("q", "explicit")
    assert manager.digest(token) == expected("q", settings.SECRET_KEY)


#: Dicts of str keys and scalar values: a manager writes them with its own C encoder.
FLAT_PAYLOADS = [
    {},
    {"user_id": 123456, "email": "ada@example.com", "action": "confirm"},
    {"text": 'josé \u2028 "quoted" \\ \n \t \x00 \x7f 😀', "": "", 'key\nwith "quotes"': 1},
    {"t": True, "f": False, "n": None, "neg": -7, "big": 10**300},
    {"float": 0.1 + 0.2, "neg0": -0.0, "max": 1.7976931348623157e308, "tiny": 5e-324},
]


@pytest.mark.parametrize("payload", FLAT_PAYLOADS)
def test_flat_payloads_are_written_exactly_as_the_encoder_writes_them(
    payload: dict[str, Any],
) -> None:
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    expected = json.dumps(
        payload, cls=DjangoJSONEncoder, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    assert JsonActionTokenManager(prefix="p").encode_payload(payload) == expected


def test_an_encoder_class_that_changes_how_it_encodes_is_used_for_flat_payloads_too() -> None:
    from django.core.serializers.json import DjangoJSONEncoder

    class Shouting(DjangoJSONEncoder):
        def encode(self, o: Any) -> str:
            return super().encode(o).upper()

    class Sorted(DjangoJSONEncoder):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**{**kwargs, "sort_keys": True})

    class Ascii(DjangoJSONEncoder):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**{**kwargs, "ensure_ascii": True})

    class ShoutingManager(JsonActionTokenManager):
        json_encoder = Shouting

    class SortedManager(JsonActionTokenManager):
        json_encoder = Sorted

    class AsciiManager(JsonActionTokenManager):
        json_encoder = Ascii

    assert ShoutingManager(prefix="p").encode_payload({"a": "b"}) == '{"A":"B"}'
    assert SortedManager(prefix="p").encode_payload({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    assert AsciiManager(prefix="p").encode_payload({"a": "é"}) == '{"a":"\\u00e9"}'


def test_random_tokens_are_url_safe_base64_of_token_bytes_random_bytes() -> None:
    import base64

    class Short(JsonActionTokenManager):
        token_bytes = 20

    for manager in (JsonActionTokenManager(prefix="p"), Short(prefix="p")):
        tokens = {manager.random_token() for _ in range(200)}
        assert len(tokens) == 200
        for token in tokens:
            assert len(token) == manager.token_length()
            assert manager.is_well_formed(token)
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            assert len(raw) == manager.token_bytes
        # Every character of the alphabet turns up, "-" and "_" included.
        assert set("".join(tokens)) == set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


def test_redis_keys_follow_the_key_prefix_through_every_settings_change(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.conf import derived_key_prefix, keel_settings

    digest = "ab" * 32
    settings.KEEL = {**settings.KEEL, "KEY_PREFIX": "first"}
    assert RedisTokenStore.token_key("p", digest) == f"first:token:p:{digest}"
    assert RedisTokenStore.token_key("q", digest) == f"first:token:q:{digest}"
    with override_settings(KEEL={**settings.KEEL, "KEY_PREFIX": "second"}):
        assert RedisTokenStore.token_key("p", digest) == f"second:token:p:{digest}"
    assert RedisTokenStore.token_key("p", digest) == f"first:token:p:{digest}"
    # Deleting a setting through pytest-django sends no setting_changed: reload() is enough.
    del settings.KEEL
    keel_settings.reload()
    derived = derived_key_prefix()
    assert RedisTokenStore.token_key("p", digest) == f"{derived}:token:p:{digest}"
    # A derived prefix follows the default database, which changes without a signal (as the
    # test runner renames it).
    monkeypatch.setitem(settings.DATABASES["default"], "HOST", "elsewhere.example")
    assert derived_key_prefix() != derived
    assert RedisTokenStore.token_key("p", digest) == f"{derived_key_prefix()}:token:p:{digest}"
