"""URLs of the keel.tokens tests: two confirmation views as a project would write them."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, path

from keel.tokens import ActionTokenConfirmView, InvalidToken, JsonActionTokenManager
from tests.testapp.models.tokens import TokenAccount

email_tokens = JsonActionTokenManager(prefix="email:confirm")


class ConfirmEmailView(ActionTokenConfirmView):
    token_manager = email_tokens
    template_name = "tokens/confirm_email.html"
    invalid_template_name = "tokens/invalid.html"
    success_url = "/tokens/done/"

    def check_payload(self, payload: dict[str, Any]) -> None:
        if payload.get("locked"):
            raise InvalidToken("This account is locked.")

    def token_consumed(self, payload: dict[str, Any]) -> HttpResponse | None:
        TokenAccount.objects.filter(pk=payload["account"]).update(email_confirmed=True)
        if payload.get("fail"):
            raise RuntimeError("the action failed after writing")
        return None


class PlainConfirmView(ActionTokenConfirmView):
    token_prefix = "plain"

    def token_consumed(self, payload: dict[str, Any]) -> HttpResponse | None:
        return HttpResponse(f"done {payload['n']}")


class UnconfiguredView(ActionTokenConfirmView):
    pass


urlpatterns: list[URLPattern | URLResolver] = [
    path("confirm-email/<str:token>/", ConfirmEmailView.as_view(), name="tokens-confirm-email"),
    path("plain/<str:token>/", PlainConfirmView.as_view(), name="tokens-plain"),
    path("unconfigured/<str:token>/", UnconfiguredView.as_view(), name="tokens-unconfigured"),
]
