"""Models for imports of several models in one file and many-to-many links inside a file."""

from __future__ import annotations

from django.db import models


class FixtureTopicManager(models.Manager["FixtureTopic"]):
    def get_by_natural_key(self, slug: str) -> FixtureTopic:
        return self.get(slug=slug)


class FixtureTopic(models.Model):
    """Symmetrical links to itself (``ManyToManyField("self")``)."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100, default="")
    related = models.ManyToManyField("self", blank=True)

    objects = FixtureTopicManager()

    def natural_key(self) -> tuple[str]:
        return (self.slug,)


class FixtureLessonManager(models.Manager["FixtureLesson"]):
    def get_by_natural_key(self, key: str) -> FixtureLesson:
        return self.get(key=key)


class FixtureLesson(models.Model):
    """A foreign key and a many-to-many field to another model, a one-way many-to-many field
    to itself."""

    key = models.CharField(max_length=50, unique=True)
    title = models.CharField(max_length=100, default="")
    topic = models.ForeignKey(
        FixtureTopic, null=True, blank=True, on_delete=models.CASCADE, related_name="main_lessons"
    )
    topics = models.ManyToManyField(FixtureTopic, blank=True, related_name="lessons")
    prerequisites = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="unlocks"
    )

    objects = FixtureLessonManager()

    def natural_key(self) -> tuple[str]:
        return (self.key,)


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


class FixtureShelfManager(models.Manager["FixtureShelf"]):
    def get_by_natural_key(self, code: str) -> FixtureShelf:
        return self.get(code=code)


class FixtureShelf(models.Model):
    """With `FixtureVolume`, two models that refer to each other (a cycle through nullable
    keys)."""

    code = models.CharField(max_length=20, unique=True)
    label = models.CharField(max_length=100, default="")
    first_volume = models.ForeignKey(
        "FixtureVolume", null=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = FixtureShelfManager()

    def natural_key(self) -> tuple[str]:
        return (self.code,)


class FixtureVolumeManager(models.Manager["FixtureVolume"]):
    def get_by_natural_key(self, code: str) -> FixtureVolume:
        return self.get(code=code)


class FixtureVolume(models.Model):
    code = models.CharField(max_length=20, unique=True)
    shelf = models.ForeignKey(FixtureShelf, null=True, on_delete=models.CASCADE)

    objects = FixtureVolumeManager()

    def natural_key(self) -> tuple[str]:
        return (self.code,)


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
