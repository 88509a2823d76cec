"""ValidateOnSaveMixin and FasterValidateOnSaveMixin on the real database of the run."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.testapp.models.mixins_misc import (
    MiscFasterValidatedArticle,
    MiscLazyValidatedArticle,
    MiscOwner,
    MiscValidatedArticle,
)

pytestmark = pytest.mark.django_db


def data_statements(queries: CaptureQueriesContext) -> list[str]:
    sqls = [q["sql"].upper() for q in queries.captured_queries]
    return [sql for sql in sqls if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


@pytest.fixture
def author() -> MiscOwner:
    return MiscOwner.objects.create(name="author")


def test_invalid_instance_raises_and_writes_nothing(author: MiscOwner) -> None:
    article = MiscValidatedArticle(title="x" * 21, slug="a", author=author, rating=9)
    with pytest.raises(ValidationError) as excinfo:
        article.save()
    assert set(excinfo.value.message_dict) == {"title", "rating"}
    assert article.pk is None
    assert not MiscValidatedArticle.objects.exists()


def test_clean_errors_are_raised_on_save(author: MiscOwner) -> None:
    with pytest.raises(ValidationError) as excinfo:
        MiscValidatedArticle(title="forbidden", slug="a", author=author).save()
    assert excinfo.value.message_dict == {NON_FIELD_ERRORS: ["This title is forbidden."]}


def test_uniqueness_is_validated_before_the_insert(author: MiscOwner) -> None:
    MiscValidatedArticle.objects.create(title="a", slug="a", author=author)
    with pytest.raises(ValidationError) as excinfo:
        MiscValidatedArticle(title="a", slug="a", author=author).save()
    assert excinfo.value.message_dict == {
        "slug": ["Misc validated article with this Slug already exists."],
        NON_FIELD_ERRORS: ["Misc validated article with this Author and Title already exists."],
    }


def test_save_validate_false_skips_validation(author: MiscOwner) -> None:
    article = MiscValidatedArticle(title="a", slug="a", author=author, rating=9)
    article.save(validate=False)
    assert MiscValidatedArticle.objects.get(pk=article.pk).rating == 9


def test_class_flag_off_and_validate_true_forces_it(author: MiscOwner) -> None:
    MiscLazyValidatedArticle(title="a", slug="a", author=author, rating=9).save()
    with pytest.raises(ValidationError):
        MiscLazyValidatedArticle(title="b", slug="b", author=author, rating=9).save(validate=True)
    assert MiscLazyValidatedArticle.objects.count() == 1


def test_validate_on_save_kwargs_cannot_be_mutated_by_accident() -> None:
    with pytest.raises(TypeError):
        MiscValidatedArticle.validate_on_save_kwargs["exclude"] = ["title"]  # type: ignore[index]


def test_full_validation_costs_one_query_per_check(author: MiscOwner) -> None:
    article = MiscValidatedArticle(title="a", slug="a", author=author)
    with CaptureQueriesContext(connection) as queries:
        article.save()
    # author exists, slug unique, (author, title) unique, rating check, then the INSERT.
    # The check constraint's query runs in a savepoint of its own: not counted.
    statements = data_statements(queries)
    assert len(statements) == 5
    assert statements[-1].startswith("INSERT")


def test_faster_validation_sends_no_query_besides_the_insert(author: MiscOwner) -> None:
    article = MiscFasterValidatedArticle(title="a", slug="a", author=author)
    with CaptureQueriesContext(connection) as queries:
        article.save()
    assert len(queries) == 1
    assert queries.captured_queries[0]["sql"].upper().startswith("INSERT")


def test_faster_validation_still_checks_fields_and_clean(author: MiscOwner) -> None:
    article = MiscFasterValidatedArticle(title="forbidden", slug="a b", author=author, rating=9)
    with CaptureQueriesContext(connection) as queries, pytest.raises(ValidationError) as excinfo:
        article.save()
    assert len(queries) == 0
    assert set(excinfo.value.message_dict) == {"slug", "rating", NON_FIELD_ERRORS}


def test_faster_validation_checks_required_foreign_keys_without_a_query() -> None:
    article = MiscFasterValidatedArticle(title="a", slug="a")
    with CaptureQueriesContext(connection) as queries, pytest.raises(ValidationError) as excinfo:
        article.save()
    assert len(queries) == 0
    assert excinfo.value.message_dict == {"author": ["This field cannot be null."]}


def test_faster_validation_leaves_uniqueness_to_the_database(author: MiscOwner) -> None:
    MiscFasterValidatedArticle.objects.create(title="a", slug="a", author=author)
    with pytest.raises(IntegrityError), transaction.atomic():
        MiscFasterValidatedArticle(title="b", slug="a", author=author).save()


def test_partial_save_validates_only_the_written_fields(author: MiscOwner) -> None:
    article = MiscValidatedArticle.objects.create(title="a", slug="a", author=author)
    MiscValidatedArticle.objects.filter(pk=article.pk).update(rating=9)
    article.refresh_from_db()
    article.title = "renamed"
    with CaptureQueriesContext(connection) as queries:
        article.save(update_fields=["title"])
    # Only the UPDATE: no FK, unique or constraint query for fields that are not written.
    assert len(queries) == 1
    assert MiscValidatedArticle.objects.get(pk=article.pk).title == "renamed"
    with pytest.raises(ValidationError) as excinfo:
        article.save(update_fields=["rating"])
    assert set(excinfo.value.message_dict) == {"rating"}


def test_update_fields_given_as_a_generator_reach_django(author: MiscOwner) -> None:
    article = MiscValidatedArticle.objects.create(title="a", slug="a", author=author)
    article.title = "b"
    article.rating = 3
    article.save(update_fields=(name for name in ["title"]))
    article.refresh_from_db()
    assert (article.title, article.rating) == ("b", 0)


def test_empty_update_fields_validates_and_writes_nothing(author: MiscOwner) -> None:
    article = MiscValidatedArticle.objects.create(title="a", slug="a", author=author)
    article.rating = 9
    with CaptureQueriesContext(connection) as queries:
        article.save(update_fields=[])
    assert len(queries) == 0


def test_unknown_save_option_is_a_type_error(author: MiscOwner) -> None:
    with pytest.raises(TypeError, match="bogus"):
        MiscValidatedArticle(title="a", slug="a", author=author).save(bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        MiscFasterValidatedArticle(title="a", slug="a", author=author).save(validate=False, bogus=1)


def test_asave_takes_the_validate_option(author: MiscOwner) -> None:
    async def main() -> None:
        with pytest.raises(ValidationError):
            await MiscValidatedArticle(title="a", slug="a", author=author, rating=9).asave()
        await MiscValidatedArticle(title="b", slug="b", author=author, rating=9).asave(
            validate=False
        )
        await MiscFasterValidatedArticle(title="c", slug="c", author=author).asave(
            validate=True, using="default"
        )
        with pytest.raises(TypeError, match="bogus"):
            await MiscValidatedArticle(title="d", slug="d", author=author).asave(bogus=1)

    async_to_sync(main)()
    assert list(MiscValidatedArticle.objects.values_list("slug", flat=True)) == ["b"]
    assert MiscFasterValidatedArticle.objects.filter(slug="c").exists()
