"""The confirm view: headers on the error pages of late failures; actions on another database."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from keel.tokens import ActionTokenConfirmView, JsonActionTokenDatabaseManager
from tests.testapp.models.tokens import TokenAccount

pytestmark = [pytest.mark.django_db(databases=["default", "other"]), pytest.mark.urls(__name__)]

manager = JsonActionTokenDatabaseManager(prefix="view:late")


class ActionView(ActionTokenConfirmView):
    token_manager = manager
    template_name = "tokens/confirm_email.html"
    invalid_template_name = "tokens/invalid.html"

    def token_consumed(self, payload: dict[str, Any]) -> HttpResponse | None:
        from django.template.response import TemplateResponse

        return TemplateResponse(self.request, "tokens/does-not-exist-either.html", {})


class BrokenPageView(ActionTokenConfirmView):
    token_manager = manager
    template_name = "tokens/does-not-exist.html"
    invalid_template_name = ActionView.invalid_template_name
    success_url = "/done/"


other_manager = JsonActionTokenDatabaseManager(prefix="view:other", using="other")


class OtherDatabaseView(ActionTokenConfirmView):
    token_manager = other_manager
    template_name = "tokens/confirm_email.html"
    success_url = "/done/"

    def token_consumed(self, payload: dict[str, Any]) -> HttpResponse | None:
        TokenAccount.objects.filter(pk=payload["account"]).update(email_confirmed=True)
        raise RuntimeError("the action failed after writing")


@pytest.fixture(autouse=True)
def _no_middleware_referrer_policy(settings: Any) -> None:
    # SecurityMiddleware would add its own Referrer-Policy: check the view's.
    settings.SECURE_REFERRER_POLICY = None


urlpatterns = [
    path("broken/<str:token>/", BrokenPageView.as_view()),
    path("action/<str:token>/", ActionView.as_view()),
    path("other/<str:token>/", OtherDatabaseView.as_view()),
]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        # A confirm page whose template fails to render.
        ("get", "/broken/{token}/"),
        # An action returning a TemplateResponse that fails to render.
        ("post", "/action/{token}/"),
    ],
    ids=["confirm-page", "action-response"],
)
def test_error_page_of_a_failing_page_carries_the_headers(method: str, url: str) -> None:
    """A page that fails to render late: its 500 carries the headers all the same."""
    token = manager.create_token({"n": 1})
    client = Client(raise_request_exception=False)
    response = getattr(client, method)(url.format(token=token))
    assert response.status_code == 500
    assert response.get("Referrer-Policy") == "same-origin"
    assert "no-store" in response.get("Cache-Control", "")


def test_failing_action_rolls_back_its_writes_with_tokens_on_another_database() -> None:
    """Tokens on ``other``, the action writing to ``default``: a failure undoes both."""
    account = TokenAccount.objects.create(email="ada@example.com")
    token = other_manager.create_token({"account": account.pk})
    response = Client(raise_request_exception=False).post(f"/other/{token}/")
    assert response.status_code == 500
    assert other_manager.get_token_data(token) is not None  # the token was given back
    account.refresh_from_db()
    assert account.email_confirmed is False  # ... and the action's write undone
