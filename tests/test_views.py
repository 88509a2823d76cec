"""keel.views.ValidationErrorsMixin with Django's generic edit views and a real test client."""

from __future__ import annotations

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.forms import Form, fields
from django.test import Client
from django.urls import reverse
from django.views.generic import FormView

from keel.views import ValidationErrorsMixin
from tests.testapp.models.mixins_misc import (
    MiscOwner,
    MiscUniqueItem,
    MiscUniqueTogetherItem,
    MiscValidatedArticle,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(db: None) -> MiscOwner:
    """The owner of the items the item form adds."""
    return MiscOwner.objects.create(name="o")


def test_uniqueness_race_is_shown_on_the_visible_field(client: Client, owner: MiscOwner) -> None:
    MiscUniqueTogetherItem.objects.create(owner=owner, name="report", code="1")
    url = reverse("misc-item-new", kwargs={"owner": owner.pk})
    response = client.post(url, {"name": "report", "code": "2", "kind": ""})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "name": ["Misc unique together item with this Name already exists."]
    }
    assert b"Misc unique together item with this Name already exists." in response.content
    assert MiscUniqueTogetherItem.objects.count() == 1


def test_valid_post_still_redirects(client: Client, owner: MiscOwner) -> None:
    url = reverse("misc-item-new", kwargs={"owner": owner.pk})
    response = client.post(url, {"name": "report", "code": "", "kind": ""})
    assert response.status_code == 302
    assert MiscUniqueTogetherItem.objects.get().owner == owner


def test_error_of_a_field_not_on_the_form_becomes_a_labelled_non_field_error(
    client: Client,
) -> None:
    MiscUniqueItem.objects.create(slug="hello-world")
    response = client.post(reverse("misc-slugged-new"), {"title": "Hello world"})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        NON_FIELD_ERRORS: ["Slug: Misc unique item with this Slug already exists."]
    }


def test_writes_of_the_failed_form_valid_are_rolled_back(client: Client) -> None:
    MiscUniqueItem.objects.create(slug="hello-world")
    client.post(reverse("misc-slugged-new"), {"title": "Hello world"})
    assert not MiscOwner.objects.filter(name__startswith="audit").exists()


def test_request_transaction_stays_usable(client: Client) -> None:
    # As under ATOMIC_REQUESTS: the view runs inside the caller's transaction.
    MiscUniqueItem.objects.create(slug="hello-world")
    with transaction.atomic():
        response = client.post(reverse("misc-slugged-new"), {"title": "Hello world"})
        assert response.status_code == 200
        assert MiscUniqueItem.objects.count() == 1
        assert not transaction.get_rollback()


def test_validate_on_save_errors_are_shown(client: Client) -> None:
    author = MiscOwner.objects.create(name="a")
    article = MiscValidatedArticle.objects.create(title="a", slug="a", author=author)
    url = reverse("misc-article-edit", kwargs={"pk": article.pk})
    response = client.post(url, {"title": "boost"})
    assert response.status_code == 200
    assert response.context["form"].errors == {
        NON_FIELD_ERRORS: ["Rating: Ensure this value is less than or equal to 5."]
    }
    article.refresh_from_db()
    assert (article.title, article.rating) == ("a", 0)


class ContactForm(Form):
    email = fields.EmailField()


class ContactView(ValidationErrorsMixin, FormView):
    form_class = ContactForm
    template_name = "mixins/form.html"
    success_url = "/done/"
    error = ValidationError("unset")

    def form_valid(self, form: ContactForm):  # type: ignore[no-untyped-def]
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValidationError("Mailbox full."), {NON_FIELD_ERRORS: ["Mailbox full."]}),
        (
            ValidationError({"email": "Unknown address.", NON_FIELD_ERRORS: "Try later."}),
            {"email": ["Unknown address."], NON_FIELD_ERRORS: ["Try later."]},
        ),
        (
            ValidationError({"phone": ["Too short.", "Not a number."]}),
            {NON_FIELD_ERRORS: ["phone: Too short.", "phone: Not a number."]},
        ),
    ],
)
def test_plain_form_view_puts_every_message_on_the_form(
    rf: pytest.FixtureRequest, error: ValidationError, expected: dict[str, list[str]]
) -> None:
    request = rf.post("/", {"email": "a@example.com"})  # type: ignore[attr-defined]
    view = ContactView.as_view(error=error)
    response = view(request)
    assert response.status_code == 200
    assert response.context_data["form"].errors == expected
