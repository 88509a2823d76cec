"""The confirmation view: GET never uses a token, POST uses it once, the URL never leaks."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from keel.tokens import JsonActionTokenManager, TokenStoreUnavailable
from tests.testapp.models.tokens import TokenAccount
from tests.testapp.urls_tokens import email_tokens

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("keel_redis")
    return str(request.param)


@pytest.fixture
def account() -> TokenAccount:
    return TokenAccount.objects.create(email="ada@example.com")


def confirm_url(token: str) -> str:
    return reverse("tokens-confirm-email", kwargs={"token": token})


def email_token(account: TokenAccount, **extra: Any) -> str:
    return email_tokens.create_token({"account": account.pk, "email": account.email, **extra})


def test_get_shows_the_payload_without_using_the_token(
    client: Client, store: str, account: TokenAccount
) -> None:
    token = email_token(account)
    for _ in range(3):
        response = client.get(confirm_url(token))
        assert response.status_code == 200
        assert "Confirm ada@example.com?" in response.content.decode()
    assert client.head(confirm_url(token)).status_code == 200
    assert email_tokens.get_token_data(token) is not None


def test_post_uses_the_token_once_runs_the_action_and_redirects(
    client: Client, store: str, account: TokenAccount
) -> None:
    token = email_token(account)
    response = client.post(confirm_url(token))
    assert response.status_code == 302
    assert response["Location"] == "/tokens/done/"
    account.refresh_from_db()
    assert account.email_confirmed is True
    again = client.post(confirm_url(token))
    assert again.status_code == 410
    assert "invalid, expired or already used" in again.content.decode()
    assert client.get(confirm_url(token)).status_code == 410


def test_every_response_forbids_the_referrer_and_caching(
    client: Client, store: str, account: TokenAccount
) -> None:
    token = email_token(account)
    responses = [
        client.get(confirm_url(token)),
        client.post(confirm_url(token)),
        client.post(confirm_url(token)),
        client.get(confirm_url("other:x")),
        client.get(reverse("tokens-plain", kwargs={"token": "nope"})),
    ]
    assert [r.status_code for r in responses] == [200, 302, 410, 410, 404]
    for response in responses:
        assert response["Referrer-Policy"] == "same-origin"
        assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("bad", ["other:x", "x" * 500, "é" * 43, "a" * 42])
def test_malformed_tokens_get_the_invalid_page(client: Client, store: str, bad: str) -> None:
    assert client.get(confirm_url(bad)).status_code == 410
    assert client.post(confirm_url(bad)).status_code == 410


def test_expired_token_gets_the_invalid_page(client: Client, store: str, clock: ModuleType) -> None:
    token = email_tokens.create_token({"account": 1}, ttl_seconds=1)
    if store == "redis":
        time.sleep(1.1)  # Redis expires the key on its own clock
    else:
        clock.advance(1.1)
    assert client.get(confirm_url(token)).status_code == 410
    assert client.post(confirm_url(token)).status_code == 410


def test_post_without_csrf_token_is_refused_and_keeps_the_token(
    store: str, account: TokenAccount
) -> None:
    browser = Client(enforce_csrf_checks=True)
    token = email_token(account)
    assert browser.post(confirm_url(token)).status_code == 403
    assert email_tokens.get_token_data(token) is not None
    page = browser.get(confirm_url(token))
    csrf = page.context["csrf_token"]
    response = browser.post(confirm_url(token), {"csrfmiddlewaretoken": str(csrf)})
    assert response.status_code == 302
    assert email_tokens.get_token_data(token) is None


def test_a_refused_payload_is_invalid_and_never_uses_the_token(
    client: Client, store: str, account: TokenAccount
) -> None:
    token = email_token(account, locked=True)
    assert client.get(confirm_url(token)).status_code == 410
    assert client.post(confirm_url(token)).status_code == 410
    assert email_tokens.get_token_data(token) is not None
    account.refresh_from_db()
    assert account.email_confirmed is False


def test_a_failing_action_rolls_back_its_writes(store: str, account: TokenAccount) -> None:
    token = email_token(account, fail=True)
    client = Client(raise_request_exception=False)
    assert client.post(confirm_url(token)).status_code == 500
    account.refresh_from_db()
    assert account.email_confirmed is False
    if store == "database":
        # The consume was in the same transaction: the token is usable again.
        assert email_tokens.get_token_data(token) is not None
    else:
        # Redis is not transactional with the database: the token is spent.
        assert email_tokens.get_token_data(token) is None


def test_view_without_invalid_template_answers_404(client: Client, store: str) -> None:
    manager = JsonActionTokenManager(prefix="plain")
    token = manager.create_token({"n": 3})
    url = reverse("tokens-plain", kwargs={"token": token})
    assert client.get(url).status_code == 200
    response = client.post(url)
    assert response.content == b"done 3"
    assert client.post(url).status_code == 404


def test_other_methods_are_not_allowed(client: Client, store: str, account: TokenAccount) -> None:
    token = email_token(account)
    assert client.put(confirm_url(token)).status_code == 405
    assert client.delete(confirm_url(token)).status_code == 405
    assert email_tokens.get_token_data(token) is not None


def test_a_view_without_a_manager_is_improperly_configured(client: Client) -> None:
    with pytest.raises(ImproperlyConfigured, match="needs a token_manager or a token_prefix"):
        client.get(reverse("tokens-unconfigured", kwargs={"token": "x" * 43}))


def test_store_down_is_an_error_not_an_invalid_link(client: Client, settings: Any) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": "redis://127.0.0.1:1/0"}
    with pytest.raises(TokenStoreUnavailable):
        client.get(confirm_url(email_tokens.make_token()))


def assert_protected(response: Any) -> None:
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]


def test_the_csrf_refusal_carries_the_protective_headers(store: str, account: TokenAccount) -> None:
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(confirm_url(email_token(account)))
    assert response.status_code == 403
    assert_protected(response)


def test_the_store_down_error_carries_the_protective_headers(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.KEEL = {**settings.KEEL, "REDIS_URL": "redis://127.0.0.1:1/0"}
    client = Client(raise_request_exception=False)
    for response in (
        client.get(confirm_url(email_tokens.make_token())),
        client.post(confirm_url(email_tokens.make_token())),
    ):
        assert response.status_code == 500
        assert_protected(response)
    # Django's error handling ran as usual: the django.request log has the error.
    logged = [r for r in caplog.records if r.name == "django.request"]
    assert logged and all(r.exc_info and r.exc_info[0] is TokenStoreUnavailable for r in logged)


def test_an_error_in_the_action_carries_the_protective_headers(
    store: str, account: TokenAccount
) -> None:
    client = Client(raise_request_exception=False)
    response = client.post(confirm_url(email_token(account, fail=True)))
    assert response.status_code == 500
    assert_protected(response)
