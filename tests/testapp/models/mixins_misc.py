"""Concrete test models for keel.models.mixins (uniqueness, validation, meta, files)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models.functions import Lower

from keel.models.mixins.files import SaveInstanceFilesMixin
from keel.models.mixins.meta import PublicMetaMixin, RelatedModelMixin, ReloadMixin
from keel.models.mixins.tracking import AutoUpdateFieldsMixin
from keel.models.mixins.uniqueness import BetterUniquenessErrorsMixin
from keel.models.mixins.validation import FasterValidateOnSaveMixin, ValidateOnSaveMixin


class MiscOwner(models.Model):
    name = models.CharField(max_length=50)


# --- uniqueness -----------------------------------------------------------------------------


class MiscUniqueItem(BetterUniquenessErrorsMixin):
    slug = models.SlugField(max_length=50, unique=True)
    # Names containing "_id": the old parser turned "owner_identity" into "ownerentity".
    owner_identity = models.CharField(max_length=50, unique=True, null=True, blank=True)
    external_id = models.CharField(
        max_length=50, unique=True, null=True, blank=True, db_column="ext_ref_id"
    )
    title = models.CharField(max_length=100, blank=True)


class MiscUnconvertedItem(BetterUniquenessErrorsMixin):
    unique_from_integrity_error = False

    slug = models.SlugField(max_length=50, unique=True)


class MiscUniqueTogetherItem(BetterUniquenessErrorsMixin):
    unique_together_hide_fields = ("owner", "position")

    owner = models.ForeignKey(MiscOwner, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=50)
    code = models.CharField(max_length=20, blank=True)
    kind = models.CharField(max_length=20, blank=True)
    position = models.IntegerField(null=True, blank=True)

    class Meta:
        unique_together = [("owner", "name"), ("owner", "code", "kind"), ("owner", "position")]


class MiscConstraintItem(BetterUniquenessErrorsMixin):
    tenant = models.ForeignKey(
        MiscOwner, on_delete=models.CASCADE, related_name="+", db_column="tenant_ref_id"
    )
    code = models.CharField(max_length=20, db_column="legacy_code")
    label = models.CharField(max_length=50)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="misc_constraint_tenant_code"),
            models.UniqueConstraint(
                fields=["label"],
                name="misc_constraint_label",
                violation_error_message="This label is taken.",
                violation_error_code="label_taken",
            ),
        ]


class MiscConditionalConstraintItem(BetterUniquenessErrorsMixin):
    code = models.CharField(max_length=20)
    archived = models.BooleanField(default=False)

    class Meta:
        required_db_features = ["supports_partial_indexes"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                condition=models.Q(archived=False),
                name="misc_live_code",
                violation_error_message="A live item already uses this code.",
            )
        ]


class MiscExpressionConstraintItem(BetterUniquenessErrorsMixin):
    name = models.CharField(max_length=50)

    class Meta:
        required_db_features = ["supports_expression_indexes"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="misc_name_ci",
                violation_error_message="Names are unique whatever their case.",
            )
        ]


class MiscUniqueParent(BetterUniquenessErrorsMixin):
    reference = models.CharField(max_length=20, unique=True)


class MiscUniqueChild(MiscUniqueParent):
    serial = models.CharField(max_length=20, unique=True)


# --- validation -----------------------------------------------------------------------------


class _ArticleFields(models.Model):
    title = models.CharField(max_length=20)
    slug = models.SlugField(max_length=50, unique=True)
    author = models.ForeignKey(MiscOwner, on_delete=models.CASCADE, related_name="+")
    editor = models.ForeignKey(
        MiscOwner, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rating = models.IntegerField(default=0, validators=[MaxValueValidator(5)])

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["author", "title"], name="%(app_label)s_%(class)s_author_title"
            ),
            models.CheckConstraint(
                condition=models.Q(rating__gte=0), name="%(app_label)s_%(class)s_rating"
            ),
        ]

    def clean(self) -> None:
        if self.title == "forbidden":
            raise ValidationError("This title is forbidden.", code="forbidden")


class MiscValidatedArticle(ValidateOnSaveMixin, _ArticleFields):
    class Meta(_ArticleFields.Meta):
        pass


class MiscLazyValidatedArticle(ValidateOnSaveMixin, _ArticleFields):
    validate_on_save = False

    class Meta(_ArticleFields.Meta):
        pass


class MiscFasterValidatedArticle(FasterValidateOnSaveMixin, _ArticleFields):
    class Meta(_ArticleFields.Meta):
        pass


# --- meta, related, reload ------------------------------------------------------------------


class MiscMetaAuthor(PublicMetaMixin, RelatedModelMixin, ReloadMixin):
    name = models.CharField(max_length=50)

    class Meta:
        verbose_name = "writer"
        verbose_name_plural = "writers"


class MiscPublishedManager(models.Manager["MiscMetaBook"]):
    def get_queryset(self) -> models.QuerySet[MiscMetaBook]:
        return super().get_queryset().filter(published=True)


class MiscMetaBook(PublicMetaMixin, RelatedModelMixin, ReloadMixin):
    author = models.ForeignKey(MiscMetaAuthor, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=50)
    published = models.BooleanField(default=True)
    paid_id = models.CharField(max_length=20, blank=True)

    # A filtering default manager: reload() must still find unpublished books.
    objects = MiscPublishedManager()
    all_objects = models.Manager()


class MiscMetaSpecialBook(MiscMetaBook):
    edition = models.IntegerField(default=1)


# --- files ----------------------------------------------------------------------------------


def document_upload_to(instance: models.Model, filename: str) -> str:
    if filename.startswith("reject"):
        raise ValueError(f"refusing to store {filename}")
    return f"documents/{instance.pk}/{filename}"


class MiscDocument(SaveInstanceFilesMixin):
    title = models.CharField(max_length=50)
    attachment = models.FileField(upload_to=document_upload_to, max_length=200)
    extra = models.FileField(upload_to=document_upload_to, blank=True, max_length=200)
    picture = models.ImageField(
        upload_to=document_upload_to,
        blank=True,
        max_length=200,
        width_field="picture_width",
        height_field="picture_height",
    )
    picture_width = models.IntegerField(null=True, blank=True)
    picture_height = models.IntegerField(null=True, blank=True)


class MiscUUIDDocument(SaveInstanceFilesMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    attachment = models.FileField(upload_to=document_upload_to, max_length=200)


# --- every pair of these mixins, in both orders ---------------------------------------------

PAIR_MIXINS: dict[str, type[models.Model]] = {
    "Uniq": BetterUniquenessErrorsMixin,
    "Valid": ValidateOnSaveMixin,
    "Faster": FasterValidateOnSaveMixin,
    "Meta": PublicMetaMixin,
    "Related": RelatedModelMixin,
    "Reload": ReloadMixin,
    "Files": SaveInstanceFilesMixin,
}


def pair_upload_to(instance: models.Model, filename: str) -> str:
    return f"pairs/{instance.pk}/{filename}"


def _pair_model(first: str, second: str) -> type[models.Model]:
    attrs: dict[str, Any] = {
        "__module__": __name__,
        "title": models.CharField(max_length=50, unique=True),
        "owner": models.ForeignKey(
            MiscOwner, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
        ),
        "attachment": models.FileField(upload_to=pair_upload_to, blank=True, max_length=200),
        "rating": models.IntegerField(default=0, validators=[MaxValueValidator(5)]),
    }
    bases = (PAIR_MIXINS[first], PAIR_MIXINS[second])
    return type(f"MiscPair{first}{second}", bases, attrs)


PAIR_MODELS: dict[tuple[str, str], type[models.Model]] = {
    (first, second): _pair_model(first, second)
    for first, second in itertools.permutations(PAIR_MIXINS, 2)
    # FasterValidateOnSaveMixin is a ValidateOnSaveMixin: they are one mixin, not a pair.
    if {first, second} != {"Valid", "Faster"}
}


# --- with the change tracking of keel.models.mixins.tracking, in both orders ----------------


class MiscFilesThenTracking(SaveInstanceFilesMixin, AutoUpdateFieldsMixin):
    attachment = models.FileField(upload_to=document_upload_to, max_length=200)
    title = models.CharField(max_length=50, blank=True)


class MiscTrackingThenFiles(AutoUpdateFieldsMixin, SaveInstanceFilesMixin):
    attachment = models.FileField(upload_to=document_upload_to, max_length=200)
    title = models.CharField(max_length=50, blank=True)
