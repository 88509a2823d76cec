"""URLs of the keel.mixins tests: generic edit views using ValidationErrorsMixin."""

from __future__ import annotations

from django.forms import BaseModelForm
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, path
from django.utils.text import slugify
from django.views.generic import CreateView, UpdateView

from keel.views import ValidationErrorsMixin
from tests.testapp.models.mixins_misc import (
    MiscOwner,
    MiscUniqueItem,
    MiscUniqueTogetherItem,
    MiscValidatedArticle,
)


class FormPage(ValidationErrorsMixin):
    """One form template, and a redirect to ``/done/`` once saved."""

    template_name = "mixins/form.html"
    success_url = "/done/"


class OwnedItemCreateView(FormPage, CreateView):
    """The owner comes from the URL, not from the form (a hidden unique_together field)."""

    model = MiscUniqueTogetherItem
    fields = ["name", "code", "kind"]

    def form_valid(self, form: BaseModelForm) -> HttpResponse:
        form.instance.owner_id = self.kwargs["owner"]
        return super().form_valid(form)


class SluggedItemCreateView(FormPage, CreateView):
    """The slug is computed from the title: uniqueness is only known when saving."""

    model = MiscUniqueItem
    fields = ["title"]

    def form_valid(self, form: BaseModelForm) -> HttpResponse:
        # Written before the failing save: must be rolled back with it.
        MiscOwner.objects.create(name=f"audit {form.cleaned_data['title']}")
        form.instance.slug = slugify(form.cleaned_data["title"])
        return super().form_valid(form)


class ArticleUpdateView(FormPage, UpdateView):
    """Validation on save checks a field the form does not show."""

    model = MiscValidatedArticle
    fields = ["title"]

    def form_valid(self, form: BaseModelForm) -> HttpResponse:
        if form.cleaned_data["title"] == "boost":
            form.instance.rating = 9
        return super().form_valid(form)


urlpatterns: list[URLPattern | URLResolver] = [
    path("owners/<int:owner>/items/new/", OwnedItemCreateView.as_view(), name="misc-item-new"),
    path("slugged/new/", SluggedItemCreateView.as_view(), name="misc-slugged-new"),
    path("articles/<int:pk>/", ArticleUpdateView.as_view(), name="misc-article-edit"),
]
