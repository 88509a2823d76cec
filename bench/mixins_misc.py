"""Cost per save of the uniqueness, validation and files mixins against plain Django.

    .venv/bin/python bench/mixins_misc.py [--db sqlite|postgres|mysql] [--rows 300] [--repeats 7]

Each contender inserts ``--rows`` new rows per round into a table of its own with the same
columns (a unique slug, a foreign key, a validated integer, a ``UniqueConstraint`` and a
``CheckConstraint``). Rounds are interleaved (the order rotates every repeat) so that drift in
the machine's load hits all alike; the tables print the median time per save and the ratio to
plain Django measured in the same run.

- ``plain Django``: ``Model.save()`` (the baseline).
- ``BetterUniquenessErrorsMixin``: the same save inside a savepoint.
- ``ValidateOnSaveMixin``: ``full_clean()`` first (4 validation queries per insert).
- ``FasterValidateOnSaveMixin``: field validation only, no query.
- ``Uniqueness + Faster``: the cheap pair that still gives form errors for duplicates.
- ``duplicate → ValidationError`` vs ``duplicate → IntegrityError``: the error path, a save that
  violates the unique slug, converted by keel vs caught by the caller in a savepoint.
- ``SaveInstanceFilesMixin`` vs ``plain FileField``: a new row with a 1 KiB file in
  ``upload_to`` (keel: INSERT + store + UPDATE; plain: store in ``None/`` + INSERT).

Every round runs inside one ``atomic()`` (a request under ``ATOMIC_REQUESTS``), so that the
figures show the mixins' own cost rather than the cost of committing each row.
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Callable
from typing import Any

from cases import make_model
from harness import (
    Report,
    database,
    db_version,
    interleave,
    parser,
    setup_django,
    versions,
)

DB_NAME = "keel_bench_mixins_misc"


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--db", default="sqlite")
    options.add_argument("--rows", type=int, default=300)
    options.add_argument("--repeats", type=int, default=7)
    args = options.parse_args()
    kind = "sqlite-file" if args.db == "sqlite" else args.db
    media = tempfile.mkdtemp(prefix="keel-bench-media-")
    setup_django({"default": database(kind, DB_NAME, args.pg_host)}, MEDIA_ROOT=media)

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

    class Owner(models.Model):
        name = models.CharField(max_length=20)

        class Meta:
            app_label = "bench"

    def make(name: str, *bases: type[models.Model]) -> type[models.Model]:
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

    def make_files(name: str, *bases: type[models.Model]) -> type[models.Model]:
        fields = {"document": models.FileField(upload_to=upload_to, max_length=200)}
        return make_model(name, (*bases, models.Model), fields, "bench", create=False)

    plain = make("Plain")
    uniq = make("Uniq", BetterUniquenessErrorsMixin)
    valid = make("Valid", ValidateOnSaveMixin)
    faster = make("Faster", FasterValidateOnSaveMixin)
    uniq_faster = make("UniqFaster", BetterUniquenessErrorsMixin, FasterValidateOnSaveMixin)
    plain_files = make_files("PlainFiles")
    keel_files = make_files("KeelFiles", SaveInstanceFilesMixin)
    all_models = [Owner, plain, uniq, valid, faster, uniq_faster, plain_files, keel_files]

    with connection.schema_editor() as editor:
        for model in reversed(all_models):
            editor.execute(
                f"DROP TABLE IF EXISTS {connection.ops.quote_name(model._meta.db_table)}"
            )
        for model in all_models:
            editor.create_model(model)
    owner = Owner.objects.create(name="o")
    payload = b"x" * 1024
    counter = iter(range(10**9))

    def inserts(model: Any) -> Callable[[], None]:
        def run() -> None:
            for _ in range(args.rows):
                n = next(counter)
                model(title=f"t{n}", slug=f"s{n}", owner=owner, rating=3).save()

        return run

    def duplicates(model: Any, catch: type[Exception]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(args.rows):
                n = next(counter)
                try:
                    if catch is IntegrityError:
                        with transaction.atomic():
                            model(title=f"t{n}", slug="taken", owner=owner).save()
                    else:
                        model(title=f"t{n}", slug="taken", owner=owner).save()
                except catch:
                    pass
                else:
                    raise AssertionError("the duplicate was saved")

        return run

    def files(model: Any) -> Callable[[], None]:
        def run() -> None:
            for _ in range(args.rows):
                n = next(counter)
                model(document=ContentFile(payload, name=f"f{n}.bin")).save()

        return run

    plain.objects.create(title="taken", slug="taken", owner=owner)
    uniq.objects.create(title="taken", slug="taken", owner=owner)
    contenders: dict[str, Callable[[], None]] = {
        "plain Django": inserts(plain),
        "BetterUniquenessErrorsMixin": inserts(uniq),
        "ValidateOnSaveMixin": inserts(valid),
        "FasterValidateOnSaveMixin": inserts(faster),
        "Uniqueness + Faster": inserts(uniq_faster),
        "duplicate → IntegrityError": duplicates(plain, IntegrityError),
        "duplicate → ValidationError": duplicates(uniq, ValidationError),
        "plain FileField": files(plain_files),
        "SaveInstanceFilesMixin": files(keel_files),
    }
    baselines = {
        "duplicate → ValidationError": "duplicate → IntegrityError",
        "SaveInstanceFilesMixin": "plain FileField",
    }

    timings = interleave(contenders, args.repeats, per=args.rows, around=transaction.atomic)
    report = Report("mixins_misc.py")
    rows = []
    for name in contenders:
        base = baselines.get(name, "plain Django")
        rows.append(
            [name, timings.median(name) * 1e6, timings.median(name) / timings.median(base), base]
        )
    report.table(
        ["contender", "µs per save|{:,.0f}", "ratio|{:.2f}x", "baseline"],
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
