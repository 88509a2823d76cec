"""Sign-up form → emailed link → confirm page (peek on GET, consume on POST) → thank-you."""

from __future__ import annotations

from typing import Any

from django.core.mail import EmailMessage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse, reverse_lazy
from django.views.generic import FormView, TemplateView

from keel.exceptions import KeelError
from keel.tokens import ActionTokenConfirmView, InvalidToken
from system.models import SiteSettings

from .forms import SignupForm
from .models import Subscription, SubscriptionState
from .tokens import confirmation_tokens


class SignupView(FormView):  # type: ignore[type-arg]
    template_name = "newsletter/signup.html"
    form_class = SignupForm
    extra_context = {"page_key": "home"}

    def form_valid(self, form: SignupForm) -> HttpResponse:
        email = form.cleaned_data["email"].lower()
        subscription, _ = Subscription.objects.get_or_create(email=email)
        if subscription.state == SubscriptionState.UNSUBSCRIBED:
            subscription.state = SubscriptionState.PENDING
            subscription.save()
        if subscription.state == SubscriptionState.PENDING:
            send_confirmation(self.request, subscription)
        return redirect("newsletter:check_email")


def send_confirmation(request: HttpRequest, subscription: Subscription) -> str:
    """Email a confirmation link; an earlier link of the same subscription stops working."""
    token = confirmation_tokens.create_token(
        {"subscription": subscription.pk, "email": subscription.email},
        subject=subscription.pk,
    )
    link = request.build_absolute_uri(reverse("newsletter:confirm", args=[token]))
    site = SiteSettings.load()
    EmailMessage(
        subject=f"Confirm your subscription to {site.site_name}",
        body=f"Open this link to confirm your subscription:\n\n{link}\n",
        from_email=site.get_from_email(),
        to=[subscription.email],
        reply_to=site.get_reply_to(),
    ).send()
    return token


class CheckEmailView(TemplateView):
    template_name = "newsletter/check_email.html"
    extra_context = {"page_key": "newsletter_check_email"}


class ConfirmView(ActionTokenConfirmView):
    """GET shows the address and a button (the token stays valid); POST consumes it."""

    token_manager = confirmation_tokens
    template_name = "newsletter/confirm.html"
    invalid_template_name = "newsletter/invalid.html"
    success_url = reverse_lazy("newsletter:thanks")
    extra_context = {"page_key": "newsletter_confirm"}

    def token_consumed(self, payload: dict[str, Any]) -> HttpResponse | None:
        # Runs in the consuming transaction: an error here gives the token back (database
        # store), so the reader can simply try again.
        subscription = Subscription.objects.filter(pk=payload["subscription"]).first()
        if subscription is None:
            raise InvalidToken("The subscription no longer exists.")
        if subscription.state != SubscriptionState.CONFIRMED:
            try:
                subscription.confirm()
            except KeelError as exc:  # unsubscribed meanwhile, or a concurrent change
                raise InvalidToken(str(exc)) from exc
        self.request.session["newsletter_email"] = subscription.email
        return None


class ThanksView(TemplateView):
    template_name = "newsletter/thanks.html"
    extra_context = {"page_key": "newsletter_thanks"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["email"] = self.request.session.get("newsletter_email", "")
        return context
