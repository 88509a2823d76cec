"""Natural keys of one unique field, shared by the fixture models."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models


class NaturalKeyManager(models.Manager[Any]):
    """``get_by_natural_key`` for a model whose natural key is its ``natural_key_field``."""

    def get_by_natural_key(self, key: Any) -> Any:
        return self.get(**{self.model.natural_key_field: key})


class NaturalKeyModel(models.Model):
    """A model whose natural key is the one unique field ``natural_key_field`` names."""

    natural_key_field: ClassVar[str]

    objects = NaturalKeyManager()

    class Meta:
        abstract = True

    def natural_key(self) -> tuple[Any]:
        return (getattr(self, self.natural_key_field),)
