"""View mixins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db import DEFAULT_DB_ALIAS, models, router, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.text import capfirst

__all__ = ["ValidationErrorsMixin"]

if TYPE_CHECKING:
    from django.views.generic.edit import FormMixin

    _FormViewBase = FormMixin[Any]
else:
    _FormViewBase = object


class ValidationErrorsMixin(_FormViewBase):
    """Show a ``ValidationError`` raised while saving as form errors, not as a server error.

    For Django's generic edit views (``CreateView``, ``UpdateView``, ``FormView``); put it before
    the view class. When ``form_valid()`` (yours or Django's, including the model's ``save()``)
    raises ``ValidationError`` on a POST (a uniqueness race converted by
    [`BetterUniquenessErrorsMixin`][keel.models.mixins.uniqueness.BetterUniquenessErrorsMixin], a
    [`ValidateOnSaveMixin`][keel.models.mixins.validation.ValidateOnSaveMixin] check, or your own
    code):

    - whatever the request wrote to the database is rolled back to a savepoint (on the database
      the view's model writes to, ``default`` without a model), so nothing half saved remains
      and the request's transaction (``ATOMIC_REQUESTS``) stays usable;
    - errors of a field on the form go onto that field; the others (non-field errors, and fields
      the form does not show, prefixed with their label) go to the non-field errors;
    - the form is rendered again by ``form_invalid()``, with status 200.
    """

    _validation_errors_form: forms.BaseForm | None = None

    def get_form(self, form_class: Any = None) -> Any:
        form = super().get_form(form_class)
        self._validation_errors_form = form
        return form

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            with transaction.atomic(using=self.get_validation_errors_database()):
                response: HttpResponse = super().post(  # type: ignore[misc]
                    request, *args, **kwargs
                )
                return response
        except ValidationError as error:
            form = self._validation_errors_form
            if form is None:
                raise
            self.add_validation_errors(form, error)
            return self.form_invalid(form)

    def get_validation_errors_database(self) -> str:
        """Alias of the savepoint around the handling of a POST."""
        model = getattr(self, "model", None)
        if model is None:
            form_class = self.get_form_class()
            model = getattr(getattr(form_class, "_meta", None), "model", None)
        if isinstance(model, type) and issubclass(model, models.Model):
            return router.db_for_write(model)
        return DEFAULT_DB_ALIAS

    def add_validation_errors(self, form: forms.BaseForm, error: ValidationError) -> None:
        """Put every message of ``error`` onto ``form``; none is dropped."""
        if not hasattr(error, "error_dict"):
            form.add_error(None, error)
            return
        model = self._form_model(form)
        for name, errors in error.error_dict.items():
            if name != NON_FIELD_ERRORS and name in form.fields:
                form.add_error(name, errors)
                continue
            if name == NON_FIELD_ERRORS:
                form.add_error(None, errors)
                continue
            label = _field_label(model, name)
            for message in ValidationError(errors):
                form.add_error(
                    None,
                    ValidationError(
                        "%(label)s: %(message)s",
                        code="field_not_on_form",
                        params={"label": label, "message": message},
                    ),
                )

    @staticmethod
    def _form_model(form: forms.BaseForm) -> type[models.Model] | None:
        meta = getattr(form, "_meta", None)
        model = getattr(meta, "model", None)
        if isinstance(model, type) and issubclass(model, models.Model):
            return model
        return None


def _field_label(model: type[models.Model] | None, name: str) -> str:
    if model is not None:
        try:
            return str(capfirst(model._meta.get_field(name).verbose_name))  # type: ignore[union-attr]
        except (FieldDoesNotExist, AttributeError):
            pass
    return name
