"""Concrete test models for keel.fixtures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import connection, models

from tests.testapp.models.natural_keys import NaturalKeyModel


class FixtureCategory(NaturalKeyModel):
    natural_key_field = "slug"

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100, default="")


class FixtureTag(models.Model):
    name = models.CharField(max_length=50, unique=True)


class FixtureArticle(models.Model):
    """Every kind of field the upsert engine converts, compares and writes."""

    key = models.CharField(max_length=100, unique=True)
    title = models.CharField(max_length=200, default="")
    body = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    published = models.BooleanField(default=False)
    publish_date = models.DateField(null=True, blank=True)
    rank = models.IntegerField(default=0)
    kind = models.CharField(
        max_length=10, choices=[("news", "News"), ("page", "Page")], default="page"
    )
    category = models.ForeignKey(
        FixtureCategory, null=True, blank=True, on_delete=models.CASCADE, related_name="articles"
    )
    tags = models.ManyToManyField(FixtureTag, blank=True, related_name="articles")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def headline(self) -> str:
        return self.title.upper()

    @property
    def slug_title(self) -> str:
        return self.title.lower().replace(" ", "-")


class FixtureEntry(models.Model):
    """A plain model for counting queries and for the big files."""

    key = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    active = models.BooleanField(default=True)
    day = models.DateField(null=True)


class FixtureCommentedEntry(models.Model):
    """A model whose save() must run: imported with ``use_bulk = False``."""

    key = models.CharField(max_length=64, unique=True)
    text = models.CharField(max_length=200)
    text_length = models.IntegerField(default=0)

    def save(self, **kwargs: Any) -> None:
        self.text_length = len(self.text)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "text" in update_fields:
            kwargs["update_fields"] = {*update_fields, "text_length"}
        super().save(**kwargs)


class FixtureSiteConfig(models.Model):
    """A singleton with a ``load()`` classmethod, a method and a property."""

    site_name = models.CharField(max_length=100, default="")
    maintenance = models.BooleanField(default=True)
    fee = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    launch = models.DateField(null=True, blank=True)
    contact_email = models.EmailField(blank=True, default="")
    default_category = models.ForeignKey(
        FixtureCategory, null=True, blank=True, on_delete=models.SET_NULL
    )

    loads = 0

    @classmethod
    def load(cls) -> FixtureSiteConfig:
        cls.loads += 1
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj

    def to_dict(self) -> dict[str, Any]:
        return {"site_name": self.site_name}

    @property
    def display_name(self) -> str:
        return self.site_name.title()


class FixturePlainSingleton(models.Model):
    """A one-row model without ``load()``."""

    motto = models.CharField(max_length=100)
    visits = models.IntegerField(default=0)


class FixtureContent(models.Model):
    """Unique on (key, language), like keel.site's static content: a composite lookup."""

    key = models.CharField(max_length=100)
    language = models.CharField(max_length=15, blank=True, default="")
    text = models.TextField(blank=True, default="")
    rank = models.IntegerField(default=0)
    tags = models.ManyToManyField(FixtureTag, blank=True, related_name="contents")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "language"], name="fixturecontent_key_language")
        ]


class FixtureRegionPrice(models.Model):
    """Unique on (code, region) and on (code, category) through ``unique_together``; ``region``
    may be NULL."""

    code = models.CharField(max_length=20)
    region = models.CharField(max_length=10, null=True, blank=True)
    category = models.ForeignKey(FixtureCategory, null=True, on_delete=models.CASCADE)
    amount = models.IntegerField(default=0)

    class Meta:
        unique_together = [("code", "region"), ("code", "category")]


class FixtureBook(NaturalKeyModel):
    """Unique on ``key`` (the lookup) and, on its own, on ``title``; a tree through ``parent``;
    a float and a datetime for the values whose comparison must settle."""

    natural_key_field = "key"

    key = models.CharField(max_length=50, unique=True)
    title = models.CharField(max_length=100, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    weight = models.FloatField(default=0)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weight__gte=0), name="fixturebook_weight_not_negative"
            )
        ]


class UnfitIntegerField(models.IntegerField):  # type: ignore[type-arg]
    """Prepares 13 as text no integer column takes: a database refusing a staged batch."""

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        return "thirteen" if value == 13 else super().get_db_prep_save(value, connection)


class FixtureCounter(models.Model):
    key = models.CharField(max_length=20, unique=True)
    count = UnfitIntegerField(default=0)


# -- Collations, constraints and preparations the staged checks must honour ---------------------

#: A case-insensitive collation where the backend has one built in (PostgreSQL: none).
_NOCASE = {"sqlite": "NOCASE", "mysql": "utf8mb4_unicode_ci"}.get(connection.vendor)


class FixtureLongPair(models.Model):
    """A composite lookup of two long text columns (a long group key on MariaDB)."""

    code = models.CharField(max_length=255)
    region = models.CharField(max_length=255)
    amount = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code", "region"], name="fixturelongpair_code_region")
        ]


class FixtureNullsNotDistinct(models.Model):
    """Unique on (code, region) with NULLs equal (PostgreSQL 15+ only)."""

    key = models.CharField(max_length=20, unique=True)
    code = models.CharField(max_length=20)
    region = models.CharField(max_length=10, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["code", "region"], name="fixture_code_region_nnd", nulls_distinct=False
            )
        ]


class FixtureNocase(models.Model):
    """A lookup whose column compares without case (SQLite NOCASE, MariaDB unicode_ci)."""

    key = models.CharField(max_length=50, unique=True, db_collation=_NOCASE)
    label = models.CharField(max_length=50, default="")


class HugeIntegerField(models.IntegerField):  # type: ignore[type-arg]
    """Prepares 13 as an integer no driver or column takes (2**70)."""

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        return 2**70 if value == 13 else super().get_db_prep_save(value, connection)


class UnencodableCharField(models.CharField):  # type: ignore[type-arg]
    """Prepares ``"bad"`` as text no UTF-8 connection can send (a lone surrogate)."""

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        return "x\ud800" if value == "bad" else super().get_db_prep_save(value, connection)


class FixturePrepared(models.Model):
    key = models.CharField(max_length=20, unique=True)
    count = HugeIntegerField(default=0)
    label = UnencodableCharField(max_length=20, default="")


class FixtureChain(NaturalKeyModel):
    """Each row names at most one successor, which at most one row may name (unique)."""

    natural_key_field = "key"

    key = models.CharField(max_length=20, unique=True)
    successor = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="predecessor"
    )


# -- Unique references to the model itself and collations the staged checks must honour (2) ------

#: Collations SQLite has built in; elsewhere the column keeps the database's own.
_RTRIM = {"sqlite": "RTRIM"}.get(connection.vendor)


class FixtureLink(NaturalKeyModel):
    """Each row names at most one next row per kind; NULLs equal on PostgreSQL 15+."""

    natural_key_field = "key"

    key = models.CharField(max_length=20, unique=True)
    kind = models.CharField(max_length=20, default="k")
    nxt = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["nxt", "kind"], name="fixture_link_nxt_kind_nnd", nulls_distinct=False
            )
        ]


class FixtureKeyedChain(NaturalKeyModel):
    """A unique reference to the model itself through its ``key`` (``to_field``)."""

    natural_key_field = "key"

    key = models.CharField(max_length=20, unique=True)
    successor = models.ForeignKey(
        "self",
        to_field="key",
        unique=True,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )


class FixtureCollated(models.Model):
    """A lookup ignoring trailing spaces (SQLite RTRIM) and a unique title ignoring case."""

    key = models.CharField(max_length=50, unique=True, db_collation=_RTRIM)
    title = models.CharField(max_length=50, unique=True, db_collation=_NOCASE)
    label = models.CharField(max_length=50, default="")


class FixtureCodedChain(models.Model):
    """A unique reference to the model itself whose natural key is ``code`` (unique, not the
    lookup ``key``)."""

    key = models.CharField(max_length=20, unique=True)
    code = models.CharField(max_length=20, unique=True)
    successor = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


class FixtureRefusedLink(models.Model):
    """A column the database refuses ``count`` 13 in, a foreign key to a model with a natural
    key and one to the model itself."""

    key = models.CharField(max_length=20, unique=True)
    count = UnfitIntegerField(default=0)
    category = models.ForeignKey(
        FixtureCategory, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


#: What ``OddlyPreparedField`` prepares the values 13 to 16 as: objects no driver adapts.
ODD_PREPARATIONS: dict[int, Any] = {13: object(), 14: {"a": 1}, 15: complex(1, 2), 16: {1, 2}}


class OddlyPreparedField(models.IntegerField):  # type: ignore[type-arg]
    """Prepares 13 to 16 as objects a database driver does not adapt."""

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        if value in ODD_PREPARATIONS:
            return ODD_PREPARATIONS[value]
        return super().get_db_prep_save(value, connection)


class FixtureOddlyPrepared(models.Model):
    key = models.CharField(max_length=20, unique=True)
    count = OddlyPreparedField(default=0)


class FixtureAttnameUnique(models.Model):
    """Unique constraints naming a foreign key by its attname (``category_id``), which
    Django accepts in ``unique_together`` and ``UniqueConstraint(fields=…)``."""

    key = models.CharField(max_length=20, unique=True)
    category = models.ForeignKey(FixtureCategory, on_delete=models.CASCADE, related_name="+")
    rank = models.IntegerField(default=0)
    slot = models.IntegerField(default=0)

    class Meta:
        unique_together = [("category_id", "rank")]
        constraints = [
            models.UniqueConstraint(fields=["category_id", "slot"], name="fixture_attname_slot")
        ]


class FixtureNocaseChain(NaturalKeyModel):
    """A unique reference to the model itself whose natural key (``key``) compares without
    case (SQLite NOCASE, MariaDB unicode_ci)."""

    natural_key_field = "key"

    key = models.CharField(max_length=20, unique=True, db_collation=_NOCASE)
    successor = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
