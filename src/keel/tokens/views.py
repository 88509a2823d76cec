"""A confirmation view for links that carry an action token.

``GET`` (and ``HEAD``) only peek at the token and render a page with a confirm button: link
scanners and mail previews that follow the link never use it up. ``POST`` (CSRF-protected)
consumes the token and runs the project's action. Every response carries
``Referrer-Policy: same-origin`` and ``Cache-Control`` forbidding storage, since the URL
holds the token: no other site ever sees it. That includes the CSRF refusal and the error
pages of exceptions raised while the view runs (a token store down, a failing action),
which the view turns into Django's error response itself. (``no-referrer`` would be
stricter but makes browsers post the page's own form with ``Origin: null``, which Django's
CSRF check refuses.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import SimpleTemplateResponse, TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect
from django.views.defaults import page_not_found
from django.views.generic.base import ContextMixin, TemplateResponseMixin, View

from keel.compat import error_response
from keel.tokens.database_store import DatabaseTokenStore
from keel.tokens.exceptions import InvalidToken
from keel.tokens.manager import JsonActionTokenManager

__all__ = ["ActionTokenConfirmView"]

ViewFunction = Callable[..., HttpResponseBase]


def protect_token_url(view: ViewFunction) -> ViewFunction:
    """Add the token-protecting headers to every response of ``view``, errors included."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            response = view(request, *args, **kwargs)
            if isinstance(response, SimpleTemplateResponse):
                # Rendered here rather than after the middleware: a template that fails must
                # fail inside this wrapper, whose error response gets the headers.
                response.render()
        except Exception as exc:
            response = error_response(request, exc)
            if response is None:
                raise
        response["Referrer-Policy"] = "same-origin"
        add_never_cache_headers(response)
        return response

    # CsrfViewMiddleware would refuse a POST before the view runs, out of reach of the
    # headers: it skips this view, whose own csrf_protect (inside this wrapper) checks it.
    wrapper.csrf_exempt = True  # type: ignore[attr-defined]
    return wrapper


# protect_token_url is outermost: the 403 of csrf_protect gets the headers too.
@method_decorator([protect_token_url, csrf_protect], name="dispatch")
class ActionTokenConfirmView(TemplateResponseMixin, ContextMixin, View):
    """Peek on GET, consume on POST; subclass it with a template and an action.

    Set ``token_manager`` (or ``token_prefix``), ``template_name``, and either ``success_url`` or
    override [`token_consumed`][keel.tokens.views.ActionTokenConfirmView.token_consumed]. The token
    comes from the URL keyword argument ``token_url_kwarg``. The template receives ``payload``; its
    form posts back to the same URL with ``{% csrf_token %}``.

    A malformed, unknown, expired or used token (or [`InvalidToken`][keel.tokens.InvalidToken]
    raised by [`check_payload`][keel.tokens.views.ActionTokenConfirmView.check_payload] or
    [`token_consumed`][keel.tokens.views.ActionTokenConfirmView.token_consumed]) answers with
    ``invalid_template_name`` and ``invalid_status``, or the project's 404 page when no template is
    set. On POST, consuming and
    [`token_consumed`][keel.tokens.views.ActionTokenConfirmView.token_consumed] run in one database
    transaction: with the database store, an exception in the action gives the token back.
    """

    http_method_names = ["get", "post", "head", "options"]
    template_name = "keel/tokens/confirm.html"
    #: The manager of the tokens; or set ``token_prefix`` for one picked by settings.
    token_manager: JsonActionTokenManager | None = None
    token_prefix: str | None = None
    token_url_kwarg = "token"
    #: Rendered for an invalid token; ``None`` renders the project's 404 page instead.
    invalid_template_name: str | None = None
    invalid_status = 410
    success_url: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)
        except InvalidToken:
            return self.token_invalid()

    def get_token_manager(self) -> JsonActionTokenManager:
        """The manager of this view's tokens."""
        if self.token_manager is not None:
            return self.token_manager
        if self.token_prefix is not None:
            self.token_manager = JsonActionTokenManager(prefix=self.token_prefix)
            return self.token_manager
        raise ImproperlyConfigured(
            f"{type(self).__name__} needs a token_manager or a token_prefix."
        )

    def get_token(self) -> str:
        """The token from the URL."""
        return str(self.kwargs.get(self.token_url_kwarg, ""))

    def check_payload(self, payload: dict[str, Any]) -> None:
        """Refuse a live token for this request by raising
        [`InvalidToken`][keel.tokens.InvalidToken].

        Runs before the page is shown and before the token is consumed, so a refused request
        never uses the token up. For example, refuse a payload of another user.
        """

    def token_consumed(self, payload: dict[str, Any]) -> HttpResponse | None:
        """Run the action of a consumed token; return a response or ``None`` to redirect."""
        return None

    def get_success_url(self, payload: dict[str, Any]) -> str:
        """Where to redirect after
        [`token_consumed`][keel.tokens.views.ActionTokenConfirmView.token_consumed] returned
        ``None``."""
        if self.success_url is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs a success_url or a token_consumed() that "
                "returns a response."
            )
        return str(self.success_url)

    def get_payload(self) -> dict[str, Any]:
        """The payload of the URL's token, checked, without consuming it."""
        payload = self.get_token_manager().get_token_data(self.get_token())
        if payload is None:
            raise InvalidToken("The token is malformed, unknown, expired or used.")
        self.check_payload(payload)
        return payload

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        payload = self.get_payload()
        return self.render_to_response(self.get_context_data(payload=payload))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.get_payload()
        manager = self.get_token_manager()
        store = manager.get_store()
        alias = store.db_for_write() if isinstance(store, DatabaseTokenStore) else DEFAULT_DB_ALIAS
        # The action's writes (on the default database) and the consume (on the tokens'
        # database) commit or roll back together: a failing action gives the token back.
        with contextlib.ExitStack() as stack:
            for using in dict.fromkeys((DEFAULT_DB_ALIAS, alias)):
                stack.enter_context(transaction.atomic(using=using))
            payload = manager.consume_token(self.get_token())
            if payload is None:
                raise InvalidToken("The token was used by a concurrent request.")
            response = self.token_consumed(payload)
        return response or HttpResponseRedirect(self.get_success_url(payload))

    def token_invalid(self) -> HttpResponse:
        """The response to a token that cannot be used."""
        if self.invalid_template_name is None:
            return page_not_found(self.request, Http404("Invalid or expired link."))
        return TemplateResponse(
            self.request,
            self.invalid_template_name,
            self.get_context_data(),
            status=self.invalid_status,
        ).render()
