"""Admin classes for keel's project-state models (register them for your concrete models).

- :class:`SingletonModelAdmin`: the list page opens the one row's change form; no add, no
  delete; history as usual.
- :class:`SecretFieldsAdminMixin` (included in the classes here): secret fields render as an
  empty password box with a "clear" checkbox; leaving it empty keeps the stored value; users
  who may only view never see them.
- :class:`StaticContentAdmin`, :class:`StaticPageSeoAdmin`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from keel.site.encryption import is_secret_field

__all__ = [
    "SecretFieldsAdminMixin",
    "SecretFormField",
    "SecretInput",
    "SecretsModelForm",
    "SingletonModelAdmin",
    "StaticContentAdmin",
    "StaticPageSeoAdmin",
]


class SecretInput(forms.PasswordInput):
    """A password box that never renders the stored value, plus a "clear" checkbox."""

    template_name = "keel/site/widgets/secret.html"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        # The admin's wide text box: the "set: leave empty to keep" hint must fit.
        super().__init__({"class": "vTextField", **(attrs or {})}, render_value=False)

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, None, attrs)
        is_set = bool(value[0] if isinstance(value, tuple) else value)
        context["widget"]["is_set"] = is_set
        context["widget"]["clear_name"] = f"{name}__clear"
        if is_set:
            context["widget"]["attrs"]["placeholder"] = _("•••••••• (set: leave empty to keep)")
        return context

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return (data.get(name) or "", bool(data.get(f"{name}__clear")))

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return name not in data and f"{name}__clear" not in data


class SecretFormField(forms.CharField):
    """Cleans to the new value, ``""`` to clear, or ``None`` to keep the stored one."""

    widget = SecretInput

    def to_python(self, value: Any) -> Any:
        typed, clear = value if isinstance(value, tuple) else (value or "", False)
        if clear:
            return ""
        if not typed:
            return None
        return super().to_python(typed)

    def validate(self, value: Any) -> None:
        if value is not None:
            super().validate(value)

    def run_validators(self, value: Any) -> None:
        if value:
            super().run_validators(value)

    def has_changed(self, initial: Any, data: Any) -> bool:
        typed, clear = data if isinstance(data, tuple) else (data or "", False)
        return bool(typed) or (clear and bool(initial))


class SecretsModelForm(forms.ModelForm):  # type: ignore[type-arg]
    """Keeps a secret's stored value when its box is left empty."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, form_field in self.fields.items():
            if isinstance(form_field, SecretFormField) and cleaned.get(name, "") is None:
                cleaned[name] = getattr(self.instance, name) or ""
        return cleaned


class SecretFieldsAdminMixin:
    """Masks secret fields in change forms and hides them from view-only users."""

    form: type[forms.ModelForm[Any]] = SecretsModelForm

    def formfield_for_dbfield(
        self, db_field: models.Field[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        if is_secret_field(db_field):
            return SecretFormField(
                label=db_field.verbose_name,
                help_text=db_field.help_text,
                required=False,
                max_length=getattr(db_field, "max_length", None),
            )
        if isinstance(db_field, models.URLField):
            # Django 6 makes https the default scheme; choose it now on every version.
            kwargs.setdefault("assume_scheme", "https")
        return super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc,no-any-return]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            return fieldsets
        secrets = {
            f.name
            for f in self.model._meta.concrete_fields  # type: ignore[attr-defined]
            if is_secret_field(f)
        }
        return [
            (title, {**options, "fields": _without(options.get("fields", ()), secrets)})
            for title, options in fieldsets
        ]


def _without(fields: Sequence[Any], names: set[str]) -> list[Any]:
    kept: list[Any] = []
    for entry in fields:
        if isinstance(entry, list | tuple):
            row = [n for n in entry if n not in names]
            if row:
                kept.append(tuple(row))
        elif entry not in names:
            kept.append(entry)
    return kept


class SingletonModelAdmin(SecretFieldsAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """The list page goes straight to the singleton's change form; no add, no delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _change_url(self) -> str:
        opts = self.model._meta
        pk = self.model.singleton_pk
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[pk]
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # The row must exist for its change form to open.
        self.model._default_manager.get_or_create(pk=self.model.singleton_pk)
        return HttpResponseRedirect(self._change_url())

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if object_id != str(self.model.singleton_pk):
            return HttpResponseRedirect(self._change_url())
        return super().change_view(request, object_id, form_url, extra_context)

    def response_post_save_change(self, request: HttpRequest, obj: Any) -> HttpResponseRedirect:
        return HttpResponseRedirect(self._change_url())


class StaticContentAdmin(SecretFieldsAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("key", "language", "excerpt", "updated_at")
    list_filter = ("language",)
    search_fields = ("key", "content")
    ordering = ("key", "language")

    @admin.display(description=_("content"))
    def excerpt(self, obj: Any) -> str:
        return Truncator(obj.content).chars(80)


class StaticPageSeoAdmin(SecretFieldsAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("page_key", "language", "seo_title", "updated_at")
    list_filter = ("language",)
    search_fields = ("page_key", "seo_title", "seo_description")
    ordering = ("page_key", "language")
