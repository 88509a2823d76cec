"""Fuzzing with hypothesis: fixture files, token strings and payloads, and the model mixins'
save options. Bounded example counts keep the suite fast; failures are shrunk by
hypothesis and printed as a minimal example."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keel.exceptions import DatabaseUpdatePreconditionsError, TransitionNotAllowedError
from keel.fixtures import FixtureError
from keel.models import FixtureState
from keel.tokens import InvalidPayload, JsonActionTokenManager, TokenError
from tests.testapp.management.commands.fixtures_import_entries import Command as ImportEntries
from tests.testapp.models.fixtures import FixtureEntry
from tests.testapp.models.mixins_core import FullStackArticle, TaskStates

#: Text without lone surrogates nor NUL: those are known failures, tested on their own below.
safe_characters = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
texts = st.text(alphabet=safe_characters, max_size=300)
short_texts = st.text(alphabet=safe_characters, max_size=8)

FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- fixture files -----------------------------------------------------------------------------

huge_numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([10**20, -(10**20), 10**400, 1e308, -1e308, 1e-320, 2**63, 2**64 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), huge_numbers, texts, short_texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(short_texts, inner, max_size=4)
    ),
    max_leaves=12,
)
# The required fields are always present: a row without one is a known failure, tested on its
# own below.
plausible_fields = st.fixed_dictionaries(
    {
        "key": st.one_of(texts.filter(bool), json_values),
        "label": st.one_of(texts, json_values),
        "amount": st.one_of(
            st.decimals(allow_nan=True, allow_infinity=True, places=3).map(str),
            huge_numbers,
            json_values,
        ),
    },
    optional={
        "active": st.one_of(st.booleans(), json_values),
        "day": st.one_of(st.dates().map(str), st.text(max_size=12), json_values),
        "unknown": json_values,
    },
)
plausible_rows = st.one_of(
    st.fixed_dictionaries(
        {"model": st.just("testapp.fixtureentry"), "fields": plausible_fields},
        optional={"pk": json_values},
    ),
    st.fixed_dictionaries({"model": json_values.filter(bool), "fields": json_values}),
    json_values,
)
fixture_documents = st.one_of(st.lists(plausible_rows, max_size=8), json_values)


def import_document(text: str | bytes) -> tuple[FixtureEntry | None, BaseException | None]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "entries.json"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        command = ImportEntries()
        command.fixture_path = path  # type: ignore[misc]
        try:
            call_command(command, stdout=io.StringIO(), stderr=io.StringIO())
        except CommandError as exc:
            return None, exc
    return FixtureEntry.objects.first(), None


def assert_imported_or_refused_whole(document: Any, text: str | bytes) -> None:
    _, error = import_document(text)
    rows = document if isinstance(document, list) else None
    if error is None:
        assert rows is not None
        assert FixtureEntry.objects.count() == len(rows)
        assert FixtureState.objects.filter(key="testapp.entries").exists()
        FixtureEntry.objects.all().delete()
        FixtureState.objects.all().delete()
        return
    # Refused: nothing written, no hash; a problem inside a row names that row.
    assert FixtureEntry.objects.count() == 0
    assert not FixtureState.objects.exists()
    assert isinstance(error, FixtureError), repr(error)
    if rows and all(isinstance(r, dict) for r in rows) and error.line is None:
        assert error.row is not None, str(error)
        assert f"row {error.row}" in str(error)


@pytest.mark.django_db
@FAST
@given(document=fixture_documents)
@example(document=[{"model": "testapp.fixtureentry", "fields": {"key": "k", "amount": 10**400}}])
@example(document=[{"model": "testapp.fixtureentry", "fields": {"key": "k", "amount": "NaN"}}])
@example(document=[{"model": "testapp.fixtureentry", "fields": {"key": "k", "amount": 1e308}}])
@example(
    document=[
        {"model": "testapp.fixtureentry", "fields": {"key": 10**20, "label": "", "amount": 1}}
    ]
)
def test_fuzzed_fixture_documents_are_imported_whole_or_refused_with_the_row(
    document: Any,
) -> None:
    assert_imported_or_refused_whole(document, json.dumps(document, ensure_ascii=False))


ROW = '[{"model": "testapp.fixtureentry", "fields": %s}]'

NASTY_FILES = [
    pytest.param(
        "[" * 100_000 + "]" * 100_000,
        id="deep-nesting",
    ),
    pytest.param(
        ROW % ('{"key": "k", "label": "l", "amount": ' + "9" * 5000 + "}"),
        id="5000-digit-integer",
    ),
    pytest.param(
        ROW % '{"key": "\\ud800", "label": "l", "amount": "1"}',
        id="lone-surrogate",
    ),
    pytest.param(
        ROW % '{"key": "k", "label": "l"}',
        id="required-field-missing",
    ),
    pytest.param(ROW % '{"key": "k", "amount": NaN}', id="NaN-literal"),
    pytest.param(ROW % '{"key": "k", "label": "l", "amount": Infinity}', id="Infinity-literal"),
    pytest.param(ROW % '{"key": "k", "label": "l", "amount": 1e999}', id="1e999"),
    pytest.param(ROW.encode() % b'{"key": "\xff\xfe"}', id="invalid-UTF-8"),
    pytest.param("", id="empty-file"),
    pytest.param("\ufeff", id="BOM-only"),
    pytest.param('[{"model": "testapp.fixtureentry", "fields": {"key": "k"', id="truncated"),
    pytest.param("[] []", id="trailing-garbage"),
    pytest.param(ROW % '{"key": "k", "label": "l", "amount": "1", "nope": 1}', id="unknown"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("text", NASTY_FILES)
def test_nasty_fixture_files_are_refused_with_a_fixture_error(text: str | bytes) -> None:
    _, error = import_document(text)
    assert isinstance(error, FixtureError), repr(error)
    assert "entries.json" in str(error)
    assert FixtureEntry.objects.count() == 0
    assert not FixtureState.objects.exists()
    if isinstance(text, str) and text.startswith("[{") and error.line is None:
        assert error.row == 0, str(error)


@pytest.mark.django_db
def test_a_nul_byte_in_a_value_is_refused_on_every_database() -> None:
    # SQLite and MariaDB would store it, PostgreSQL refuses it: keel refuses it everywhere.
    text = ROW % '{"key": "a\\u0000b", "label": "l", "amount": "1"}'
    _, error = import_document(text)
    assert isinstance(error, FixtureError), repr(error)
    assert error.row == 0
    assert error.field == "key"
    assert FixtureEntry.objects.count() == 0


# -- tokens ------------------------------------------------------------------------------------

tokens_manager = JsonActionTokenManager(prefix="reliab:fuzz", store=None)
deep = {"a": None}
for _ in range(5000):
    deep = {"a": deep}
#: Deep enough to decode badly at consume, shallow enough to encode: refused at creation.
deep_950: dict[str, Any] = {"a": None}
for _ in range(950):
    deep_950 = {"a": deep_950}


@pytest.mark.django_db
@FAST
@given(token=st.one_of(st.text(max_size=100), st.text(alphabet="-_aZ09", min_size=43, max_size=43)))
@example(token="")
@example(token="\x00" * 43)
@example(token="a" * 10_000)
@example(token="\ud800" * 43)
def test_any_token_string_is_answered_none_without_an_undocumented_error(
    token: str, settings: Any
) -> None:
    settings.KEEL = {**settings.KEEL, "TOKEN_STORE": "database"}
    assert tokens_manager.get_token_data(token) is None
    assert tokens_manager.consume_token(token) is None
    assert tokens_manager.delete_token(token) is False


@pytest.mark.django_db
@FAST
@given(payload=st.one_of(json_values, st.dictionaries(st.text(max_size=20), json_values)))
@example(payload={"x": float("nan")})
@example(payload={"x": {1, 2}})
@example(payload={"x": b"bytes"})
@example(payload={"x": "y" * 100_000})
@example(payload={1: "int key"})
@example(payload={"x": 10**5000})
@example(payload={1: "a", "1": "b"})
@example(payload={"x": [{True: 1, "true": 2}]})
def test_any_payload_round_trips_or_is_refused_as_invalid_payload(
    payload: Any, settings: Any
) -> None:
    settings.KEEL = {**settings.KEEL, "TOKEN_STORE": "database"}
    try:
        token = tokens_manager.create_token(payload)
    except InvalidPayload:
        assert tokens_manager.get_store().name == "database"
        return
    except TokenError as exc:  # documented, but not expected for a payload
        pytest.fail(f"{type(exc).__name__}: {exc}")
    assert isinstance(payload, dict)
    expected = json.loads(json.dumps(payload))
    assert tokens_manager.consume_token(token) == expected
    assert tokens_manager.consume_token(token) is None


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [deep, deep_950], ids=["5000", "950"])
def test_a_deeply_nested_payload_is_refused_as_invalid_payload(
    settings: Any, payload: dict[str, Any]
) -> None:
    settings.KEEL = {**settings.KEEL, "TOKEN_STORE": "database"}
    with pytest.raises(InvalidPayload):
        tokens_manager.create_token(payload)


# -- mixins' save options ----------------------------------------------------------------------

ALL_STATES = [TaskStates.NEW, TaskStates.RUNNING, TaskStates.DONE, TaskStates.CANCELED]
EDITABLE = ("title", "body", "revision", "state")

#: PostgreSQL text columns refuse NUL, a database limit outside the mixins' contracts.
model_text = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
step = st.fixed_dictionaries(
    {
        "title": st.one_of(st.none(), st.just(""), st.text(model_text, min_size=1, max_size=100)),
        "body": st.one_of(st.none(), st.text(model_text, max_size=50)),
        "revision": st.one_of(st.none(), st.integers(min_value=0, max_value=2**31 - 1)),
        "state": st.one_of(st.none(), st.sampled_from(ALL_STATES)),
        "options": st.permutations(["pre_filters", "validate", "check_state", "update_fields"]),
        "use": st.fixed_dictionaries(
            {
                "pre_filters": st.sampled_from([None, "current", "stale"]),
                "validate": st.sampled_from([None, True, False]),
                "check_state": st.sampled_from([None, True, False]),
                "update_fields": st.one_of(
                    st.none(), st.lists(st.sampled_from(EDITABLE), min_size=1, unique=True)
                ),
            }
        ),
    }
)


def _row(pk: int) -> dict[str, Any]:
    return FullStackArticle.objects.filter(pk=pk).values(*EDITABLE).get()


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_save_options_in_any_order_and_combination_keep_their_contracts(
    steps: list[dict[str, Any]],
) -> None:
    article = FullStackArticle.objects.create(slug="fuzz", title="Start")
    try:
        for spec in steps:
            article = FullStackArticle.objects.get(pk=article.pk)
            before = _row(article.pk)
            use = spec["use"]
            update_fields = use["update_fields"]
            for name in EDITABLE:
                value = spec[name]
                if value is None:
                    continue
                if name == "state" and update_fields is not None and "state" not in update_fields:
                    continue  # a state change is saved with its field, or not at all
                setattr(article, name, value)
            kwargs: dict[str, Any] = {}
            for option in spec["options"]:
                if use[option] is None:
                    continue
                if option == "pre_filters":
                    revision = before["revision"] + (0 if use[option] == "current" else 1)
                    kwargs["pre_filters"] = {"revision": revision}
                else:
                    kwargs[option] = use[option]
            # CallFieldsPreSaveMixin refreshes updated_at on every save, so every save writes,
            # and AlwaysUpdateFieldsMixin adds revision to what it writes.
            if update_fields is None:
                written = {n for n in EDITABLE if getattr(article, n) != before[n]} | {"revision"}
            else:
                written = set(update_fields) | {"revision"}
            expected_errors: list[type[BaseException]] = []
            if kwargs.get("validate", True) and "title" in written and article.title == "":
                expected_errors.append(ValidationError)
            moved = article.state != before["state"] and "state" in written
            allowed = article.state in TaskStates.TRANSITIONS.get(before["state"], set())
            if moved and not allowed and kwargs.get("check_state", True):
                expected_errors.append(TransitionNotAllowedError)
            if use["pre_filters"] == "stale":
                expected_errors.append(DatabaseUpdatePreconditionsError)
            if expected_errors:
                with pytest.raises(tuple(expected_errors)):
                    article.save(**kwargs)
                assert _row(article.pk) == before  # refused: nothing written
                continue
            article.save(**kwargs)
            after = _row(article.pk)
            for name in EDITABLE:
                wanted = getattr(article, name) if name in written else before[name]
                assert after[name] == wanted, (name, kwargs, before, after)
    finally:
        FullStackArticle.objects.filter(pk=article.pk).delete()
