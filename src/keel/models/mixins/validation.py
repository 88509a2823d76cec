"""Run model validation on every ``save()``, not only in forms."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models

from keel import compat

__all__ = ["FasterValidateOnSaveMixin", "ValidateOnSaveMixin", "ValidateOnSaveWithoutQueriesMixin"]


class ValidateOnSaveMixin(compat.AsyncSaveOptionsMixin):
    """Call ``full_clean()`` before every save; invalid data raises ``ValidationError``.

    Guarantees:

    - ``save()`` and ``asave()`` validate when ``validate_on_save`` is true, unless called with
      ``validate=False``; ``validate=True`` forces validation when the class turns it off. The
      option is taken out before the save goes on, so it works in any mixin order.
    - ``save(update_fields=…)`` validates only the fields it writes (a partial save never fails
      on a field it does not touch), and an empty ``update_fields`` validates nothing, as Django
      then writes nothing.
    - Nothing is written when validation fails; no query is sent besides those the checks need
      (one per foreign key, unique field, ``unique_together``, and constraint; see
      [`FasterValidateOnSaveMixin`][keel.models.mixins.validation.FasterValidateOnSaveMixin] for
      none).
    """

    #: Validate on save unless ``save(validate=False)``.
    validate_on_save: ClassVar[bool] = True
    #: Extra keyword arguments of ``full_clean()`` (``exclude``, ``validate_unique``, …).
    validate_on_save_kwargs: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    class Meta:
        abstract = True

    def save(self, **kwargs: Any) -> None:
        validate = kwargs.pop("validate", None)
        if validate is None:
            validate = self.validate_on_save
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            # Frozen once, so a generator is read here and Django still gets the fields.
            update_fields = kwargs["update_fields"] = frozenset(update_fields)
        if validate and (update_fields is None or update_fields):
            self.validate_for_save(update_fields=update_fields)
        super().save(**kwargs)

    def get_validate_on_save_kwargs(
        self, update_fields: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Keyword arguments of the ``full_clean()`` call made by ``save()``."""
        options = dict(self.validate_on_save_kwargs)
        if update_fields is not None:
            written = set(update_fields)
            untouched = {
                f.name
                for f in self._meta.concrete_fields
                if f.name not in written and f.attname not in written
            }
            options["exclude"] = set(options.get("exclude") or ()) | untouched
        return options

    def validate_for_save(self, *, update_fields: Iterable[str] | None = None) -> None:
        """Validate the instance as ``save()`` does; raise ``ValidationError`` if invalid."""
        self.full_clean(**self.get_validate_on_save_kwargs(update_fields))


class FasterValidateOnSaveMixin(ValidateOnSaveMixin):
    """Validate on save without any query: fields and ``clean()`` only.

    Uniqueness, constraints and the existence of related rows are left to the database (pair it with
    [`BetterUniquenessErrorsMixin`][keel.models.mixins.uniqueness.BetterUniquenessErrorsMixin] to
    keep form errors for uniqueness). Foreign keys are still checked for null and blank without a
    query.
    """

    validate_on_save_kwargs: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"validate_unique": False, "validate_constraints": False}
    )

    class Meta:
        abstract = True

    def _written_relations(
        self, update_fields: Iterable[str] | None
    ) -> list[models.Field[Any, Any]]:
        written = None if update_fields is None else set(update_fields)
        return [
            f
            for f in self._meta.concrete_fields
            if f.is_relation and (written is None or f.name in written or f.attname in written)
        ]

    def get_validate_on_save_kwargs(
        self, update_fields: Iterable[str] | None = None
    ) -> dict[str, Any]:
        options = super().get_validate_on_save_kwargs(update_fields)
        relations = {f.name for f in self._meta.concrete_fields if f.is_relation}
        options["exclude"] = set(options.get("exclude") or ()) | relations
        return options

    def validate_for_save(self, *, update_fields: Iterable[str] | None = None) -> None:
        errors: dict[str, list[ValidationError]] = {}
        try:
            super().validate_for_save(update_fields=update_fields)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        exclude = set(self.validate_on_save_kwargs.get("exclude") or ())
        for f in self._written_relations(update_fields):
            if f.name in exclude or f.name in errors:
                continue
            value = getattr(self, f.attname)
            # The checks of Field.validate() that need no query, in the same order.
            if f.blank and value in f.empty_values:
                continue
            if value is None and not f.null:
                errors[f.name] = [ValidationError(f.error_messages["null"], code="null")]
            elif not f.blank and value in f.empty_values:
                errors[f.name] = [ValidationError(f.error_messages["blank"], code="blank")]
        if errors:
            raise ValidationError(errors)


#: The canonical name of
#: [`FasterValidateOnSaveMixin`][keel.models.mixins.validation.FasterValidateOnSaveMixin]
#: (the seed's name): it says what the mixin leaves out, every check that needs a query
#: (uniqueness, constraints, existence of related rows).
ValidateOnSaveWithoutQueriesMixin = FasterValidateOnSaveMixin
