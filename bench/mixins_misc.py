"""Cost per save of the uniqueness, validation and files mixins against plain Django: each
contender inserts ``--rows`` rows per round into a table of its own with the same columns."""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from itertools import count
from typing import Any

from cases import make_model, recreate_tables
from harness import Report, database, db_version, interleave, options, setup_django, versions


def main() -> None:
    args = options(__doc__, db="sqlite", rows=300, repeats=7)
    media = tempfile.mkdtemp(prefix="keel-bench-media-")
    setup_django(
        {"default": database(args.db, "keel_bench_mixins_misc", args.pg_host)}, MEDIA_ROOT=media
    )

    from django.core.exceptions import ValidationError
    from django.core.files.base import ContentFile
    from django.core.validators import MaxValueValidator
    from django.db import IntegrityError, connection, models, transaction

    from keel.models.mixins import (
        BetterUniquenessErrorsMixin,
        FasterValidateOnSaveMixin,
        SaveInstanceFilesMixin,
        ValidateOnSaveMixin,
    )

    owner_fields = {"name": models.CharField(max_length=20)}
    Owner = make_model("Owner", (models.Model,), owner_fields, "bench", create=False)

    def make(name: str, *bases: type[models.Model]) -> type[Any]:
        fields = {
            "title": models.CharField(max_length=50),
            "slug": models.SlugField(max_length=60, unique=True),
            "owner": models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="+"),
            "rating": models.IntegerField(default=0, validators=[MaxValueValidator(5)]),
        }
        constraints = [
            models.UniqueConstraint(fields=["owner", "title"], name=f"bench_{name}_owner_title"),
            models.CheckConstraint(condition=models.Q(rating__gte=0), name=f"bench_{name}_rating"),
        ]
        meta = {"constraints": constraints}
        return make_model(name, (*bases, models.Model), fields, "bench", create=False, meta=meta)

    def upload_to(instance: models.Model, filename: str) -> str:
        return f"bench/{instance.pk}/{filename}"

    def make_files(name: str, *bases: type[models.Model]) -> type[Any]:
        fields = {"document": models.FileField(upload_to=upload_to, max_length=200)}
        return make_model(name, (*bases, models.Model), fields, "bench", create=False)

    plain, uniq = make("Plain"), make("Uniq", BetterUniquenessErrorsMixin)
    valid, faster = make("Valid", ValidateOnSaveMixin), make("Faster", FasterValidateOnSaveMixin)
    uniq_faster = make("UniqFaster", BetterUniquenessErrorsMixin, FasterValidateOnSaveMixin)
    plain_files = make_files("PlainFiles")
    keel_files = make_files("KeelFiles", SaveInstanceFilesMixin)
    all_models = [Owner, plain, uniq, valid, faster, uniq_faster, plain_files, keel_files]
    recreate_tables(all_models)
    owner = Owner.objects.create(name="o")
    plain.objects.create(title="taken", slug="taken", owner=owner)
    uniq.objects.create(title="taken", slug="taken", owner=owner)
    counter = count()

    def rounds(one: Callable[[int], Any]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(args.rows):
                one(next(counter))

        return run

    def insert(model: Any) -> Callable[[], None]:
        return rounds(lambda n: model(title=f"t{n}", slug=f"s{n}", owner=owner, rating=3).save())

    def with_file(model: Any) -> Callable[[], None]:
        payload = b"x" * 1024
        return rounds(lambda n: model(document=ContentFile(payload, name=f"f{n}.bin")).save())

    def duplicate(model: Any, catch: type[Exception]) -> Callable[[], None]:
        def one(n: int) -> None:
            # An IntegrityError breaks the transaction around it unless a savepoint holds it.
            try:
                with transaction.atomic() if catch is IntegrityError else nullcontext():
                    model(title=f"t{n}", slug="taken", owner=owner).save()
            except catch:
                pass
            else:
                raise AssertionError("the duplicate was saved")

        return rounds(one)

    contenders: dict[str, Callable[[], None]] = {
        "plain Django": insert(plain),
        "BetterUniquenessErrorsMixin": insert(uniq),
        "ValidateOnSaveMixin": insert(valid),
        "FasterValidateOnSaveMixin": insert(faster),
        "Uniqueness + Faster": insert(uniq_faster),
        "duplicate → IntegrityError": duplicate(plain, IntegrityError),
        "duplicate → ValidationError": duplicate(uniq, ValidationError),
        "plain FileField": with_file(plain_files),
        "SaveInstanceFilesMixin": with_file(keel_files),
    }
    baselines = {
        "duplicate → ValidationError": "duplicate → IntegrityError",
        "SaveInstanceFilesMixin": "plain FileField",
    }
    timings = interleave(contenders, args.repeats, per=args.rows, around=transaction.atomic)
    rows = []
    for name in contenders:
        base = baselines.get(name, "plain Django")
        median = timings.median(name)
        rows.append([name, median * 1e6, median / timings.median(base), base])
    report = Report("mixins_misc.py")
    report.table(
        "contender; µs per save|{:,.0f}; ratio|{:.2f}x; baseline",
        rows,
        caption=f"keel bench/mixins_misc.py — {versions(db_version(), platform.machine())}; "
        f"{args.rows} saves per round, {args.repeats} rounds, median",
    )
    with connection.schema_editor() as editor:
        for model in reversed(all_models):
            editor.delete_model(model)
    report.emit(args.json)


if __name__ == "__main__":
    main()
