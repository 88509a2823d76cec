"""Models for imports of several models in one file and many-to-many links inside a file."""

from __future__ import annotations

from django.db import models

from tests.testapp.models.natural_keys import NaturalKeyModel


class FixtureTopic(NaturalKeyModel):
    """Symmetrical links to itself (``ManyToManyField("self")``)."""

    natural_key_field = "slug"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100, default="")
    related = models.ManyToManyField("self", blank=True)


class FixtureLesson(NaturalKeyModel):
    """A foreign key and a many-to-many field to another model, a one-way many-to-many field
    to itself."""

    natural_key_field = "key"

    key = models.CharField(max_length=50, unique=True)
    title = models.CharField(max_length=100, default="")
    topic = models.ForeignKey(
        FixtureTopic, null=True, blank=True, on_delete=models.CASCADE, related_name="main_lessons"
    )
    topics = models.ManyToManyField(FixtureTopic, blank=True, related_name="lessons")
    prerequisites = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="unlocks"
    )


class FixtureExercise(models.Model):
    """Depends on a lesson: applied after lessons and topics. ``lesson`` is nullable so that
    ``loaddata`` too takes a file naming a lesson after its exercises (it leaves such a key
    NULL until the lesson is loaded)."""

    lesson = models.ForeignKey(
        FixtureLesson, null=True, on_delete=models.CASCADE, related_name="exercises"
    )
    number = models.PositiveIntegerField()
    prompt = models.CharField(max_length=200, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lesson", "number"], name="fixtureexercise_number")
        ]


class FixtureShelf(NaturalKeyModel):
    """With `FixtureVolume`, two models that refer to each other (a cycle through nullable
    keys)."""

    natural_key_field = "code"

    code = models.CharField(max_length=20, unique=True)
    label = models.CharField(max_length=100, default="")
    first_volume = models.ForeignKey(
        "FixtureVolume", null=True, on_delete=models.SET_NULL, related_name="+"
    )


class FixtureVolume(NaturalKeyModel):
    natural_key_field = "code"

    code = models.CharField(max_length=20, unique=True)
    shelf = models.ForeignKey(FixtureShelf, null=True, on_delete=models.CASCADE)


class FixtureHen(models.Model):
    """With `FixtureEgg`, a cycle that no nullable key breaks."""

    code = models.CharField(max_length=20, unique=True)
    egg = models.ForeignKey("FixtureEgg", on_delete=models.CASCADE, related_name="+")


class FixtureEgg(models.Model):
    code = models.CharField(max_length=20, unique=True)
    hen = models.ForeignKey(FixtureHen, on_delete=models.CASCADE, related_name="+")


class FixturePlace(models.Model):
    """A parent of multi-table inheritance."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=50, default="")


class FixtureRestaurant(FixturePlace):
    """A multi-table inheritance child: its fields live in its own table and its parent's."""

    serves = models.CharField(max_length=50, default="")
