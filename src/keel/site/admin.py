"""Admin classes for keel's project-state models (register them for your concrete models).

- [`SingletonModelAdmin`][keel.site.admin.SingletonModelAdmin]: the list page opens the one
  row's change form; no add, no delete; fieldsets built from the model's field groups; each
  save recorded in the history with its old and new values; "reset to default" for fields
  that have a default.
- [`SecretFieldsAdminMixin`][keel.site.admin.SecretFieldsAdminMixin] (included in the classes
  here): secret fields render as an empty password box with a "clear" checkbox; leaving it
  empty keeps the stored value; users who may only view never see them.
- [`StaticContentAdmin`][keel.site.admin.StaticContentAdmin],
  [`StaticPageSeoAdmin`][keel.site.admin.StaticPageSeoAdmin].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models, router, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.functional import Promise
from django.utils.text import Truncator, camel_case_to_spaces, capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from keel.admin import ChangeFormContextMixin
from keel.site import groups, integrations
from keel.site.base import AbstractSiteSettings, CachedModelMixin, SiteSettingsSyncMixin
from keel.site.changes import locked_row, shown_changes
from keel.site.encryption import is_secret_field

__all__ = [
    "GROUP_TITLES",
    "SingletonModelAdmin",
    "StaticContentAdmin",
    "StaticPageSeoAdmin",
    "field_group_fieldsets",
]

GROUP_TITLES: dict[type[models.Model], str | Promise] = {
    groups.SiteContactSettingsMixin: _("Contact"),
    groups.SiteGeoSettingsMixin: _("Location"),
    groups.SiteSocialSettingsMixin: _("Social networks"),
    groups.SiteMarketingSettingsMixin: _("Marketing and analytics"),
    groups.SiteTechnicalSettingsMixin: _("Technical"),
    groups.SiteEmailIdentityMixin: _("Outgoing e-mail"),
    integrations.GoogleIntegrationMixin: _("Google"),
    integrations.MetaIntegrationMixin: _("Meta"),
    integrations.StripeIntegrationMixin: _("Stripe"),
    integrations.CrmIntegrationMixin: _("CRM"),
    integrations.TwilioIntegrationMixin: _("Twilio"),
    integrations.SevenIntegrationMixin: _("seven.io"),
    integrations.ExtraConfigMixin: _("Extra configuration"),
}
"""Fieldset titles of keel's field groups. Another abstract base of the model that declares
fields gets a fieldset too, titled after its class name (``ShopHoursMixin``: "Shop hours")."""

# keel's own bases: their fields (``updated_at``) join the model's own fields, not a group.
_FRAMEWORK_BASES = (AbstractSiteSettings, SiteSettingsSyncMixin, CachedModelMixin)


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
                label=capfirst(db_field.verbose_name),
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


def _field_origins(model: type[models.Model]) -> dict[str, type[models.Model]]:
    """Each field name of ``model`` mapped to the class that declared it first."""
    origins: dict[str, type[models.Model]] = {}
    for base in reversed(model.__mro__):
        if isinstance(base, type) and issubclass(base, models.Model) and base is not models.Model:
            for field in base._meta.get_fields(include_parents=False):
                if field.concrete or not field.auto_created:  # not a reverse relation
                    origins.setdefault(field.name, base)
    return origins


def _group_title(base: type[models.Model]) -> str | Promise:
    title = GROUP_TITLES.get(base)
    if title is None:
        title = capfirst(camel_case_to_spaces(base.__name__.removesuffix("Mixin")))
    return title


def field_group_fieldsets(
    model: type[models.Model], fields: Sequence[str]
) -> list[tuple[str | Promise | None, dict[str, Any]]]:
    """Admin fieldsets for ``fields`` of ``model``, one per field group.

    Args:
        model: a concrete model built from abstract field groups.
        fields: the names to lay out, in form order (``ModelAdmin.get_fields``).

    Returns:
        ``[(None, {"fields": own}), (title, {"fields": group}), ...]``: first the model's own
        fields (and those of keel's base classes), then one fieldset per abstract base in the
        order of the model's bases, titled from [`GROUP_TITLES`][keel.site.admin.GROUP_TITLES].
        A name no field declares (a read-only method) joins the first fieldset.
    """
    origins = _field_origins(model)
    own: list[str] = []
    groups: dict[type[models.Model], list[str]] = {}
    for name in fields:
        origin = origins.get(name, model)
        if origin is model or origin in _FRAMEWORK_BASES:
            own.append(name)
        else:
            groups.setdefault(origin, []).append(name)
    order = {base: index for index, base in enumerate(model.__mro__)}
    fieldsets: list[tuple[str | Promise | None, dict[str, Any]]] = []
    if own:
        fieldsets.append((None, {"fields": own}))
    for base in sorted(groups, key=order.__getitem__):
        fieldsets.append((_group_title(base), {"fields": groups[base]}))
    return fieldsets


class SingletonModelAdmin(SecretFieldsAdminMixin, ChangeFormContextMixin):
    """The list page goes straight to the singleton's change form; no add, no delete.

    Without ``fieldsets`` of its own, the form is laid out by
    [`field_group_fieldsets`][keel.site.admin.field_group_fieldsets]. Each save (and each
    "reset to default") is recorded in the admin history as ``Label (“old” → “new”)`` per
    changed field, secrets masked. The model's ``save()`` sends
    [`site_settings_changed`][keel.signals.site_settings_changed] once the transaction commits.
    """

    change_form_template = "keel/site/admin/singleton_change_form.html"

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

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if self.fieldsets:
            return fieldsets
        fields = [name for _title, options in fieldsets for name in options["fields"]]
        return field_group_fieldsets(self.model, fields)

    # -- history, signal ------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        names = [n for n in form.changed_data if n in self._concrete_fields()]
        stored = self.model._base_manager.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        if stored is not None:
            # What the database now holds, not what the form put on ``obj``.
            saved = self.model._base_manager.filter(pk=obj.pk).first()
            form.keel_changes = self._record(stored, saved or obj, names)

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> list[dict[str, dict[str, list[str]]]]:
        message = super().construct_change_message(request, form, formsets, add)
        changes: dict[str, tuple[str, str]] = getattr(form, "keel_changes", {})
        for entry in message:
            if "changed" in entry and changes:
                entry["changed"]["fields"] = self._describe(changes)
        return message

    def _concrete_fields(self) -> dict[str, models.Field[Any, Any]]:
        return {f.name: f for f in self.model._meta.concrete_fields}

    def _record(self, stored: Any, obj: Any, names: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``{name: (old, new)}`` of what the save changed, for the history (the model's
        ``save()`` sends the signal)."""
        fields = self._concrete_fields()
        return shown_changes(stored, obj, [fields[name] for name in names])

    def _describe(self, changes: dict[str, tuple[str, str]]) -> list[str]:
        fields = self._concrete_fields()
        return [
            f"{capfirst(fields[name].verbose_name)} (“{old}” → “{new}”)"
            for name, (old, new) in changes.items()
        ]

    # -- reset to default -----------------------------------------------------------------

    def resettable_fields(self, obj: Any) -> list[models.Field[Any, Any]]:
        """Editable, non-secret fields with a default whose value differs from it."""
        return [
            field
            for field in self.model._meta.concrete_fields
            if field.editable
            and field.has_default()
            and not callable(field.default)
            and not is_secret_field(field)
            and field.value_from_object(obj) != field.get_default()
        ]

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        reset = path(
            "<path:object_id>/reset/",
            self.admin_site.admin_view(require_POST(self.reset_view)),
            name=f"{opts.app_label}_{opts.model_name}_reset",
        )
        return [reset, *super().get_urls()]

    def reset_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST ``field=<name>``: set that field back to its default and save."""
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_change_permission(request, obj):
            raise PermissionDenied
        fields = {f.name: f for f in self.resettable_fields(obj)}
        field = fields.get(str(request.POST.get("field", "")))
        if field is None:
            self.message_user(
                request, gettext("This field has no default to reset to."), messages.ERROR
            )
            return HttpResponseRedirect(self._change_url())
        using = router.db_for_write(self.model, instance=obj)
        with transaction.atomic(using=using):
            # The row as it is now (``obj`` was read before this transaction), locked; only
            # the reset field is written, so a field someone else saved meanwhile is kept.
            stored = locked_row(self.model, obj.pk, using)
            if stored is None:
                raise PermissionDenied
            row = self.model._base_manager.db_manager(using).get(pk=obj.pk)
            setattr(row, field.attname, field.get_default())
            row.save(update_fields=[field.name])
            changes = self._record(stored, row, [field.name])
            if changes:
                self.log_change(request, row, [{"changed": {"fields": self._describe(changes)}}])
        self.message_user(
            request,
            gettext("“%(field)s” was reset to its default.")
            % {"field": capfirst(field.verbose_name)},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self._change_url())

    def change_form_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        return {
            "keel_resettable_fields": [
                (f.name, capfirst(f.verbose_name)) for f in self.resettable_fields(obj)
            ]
        }


class StaticContentAdmin(SecretFieldsAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Static content by key and language, with an excerpt of each text in the list."""

    list_display = ("key", "language", "excerpt", "updated_at")
    list_filter = ("language",)
    search_fields = ("key", "content")
    ordering = ("key", "language")

    @admin.display(description=_("content"))
    def excerpt(self, obj: Any) -> str:
        return Truncator(obj.content).chars(80)


class StaticPageSeoAdmin(SecretFieldsAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Page SEO by page key and language."""

    list_display = ("page_key", "language", "seo_title", "updated_at")
    list_filter = ("language",)
    search_fields = ("page_key", "seo_title", "seo_description")
    ordering = ("page_key", "language")
