"""BetterUniquenessErrorsMixin on the real database of the run (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from tests.testapp.models.mixins_misc import (
    MiscConditionalConstraintItem,
    MiscConstraintItem,
    MiscExpressionConstraintItem,
    MiscOwner,
    MiscUnconvertedItem,
    MiscUniqueChild,
    MiscUniqueItem,
    MiscUniqueParent,
    MiscUniqueTogetherItem,
)

pytestmark = pytest.mark.django_db


def errors_of(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return excinfo.value.message_dict


def codes_of(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str | None]]:
    return {
        key: [error.code for error in errors] for key, errors in excinfo.value.error_dict.items()
    }


def test_unique_field_violation_becomes_a_field_error() -> None:
    MiscUniqueItem.objects.create(slug="taken")
    with pytest.raises(ValidationError) as excinfo:
        MiscUniqueItem(slug="taken").save()
    assert errors_of(excinfo) == {"slug": ["Misc unique item with this Slug already exists."]}
    assert codes_of(excinfo) == {"slug": ["unique"]}
    assert isinstance(excinfo.value.__cause__, IntegrityError)


def test_converted_error_equals_the_one_validate_unique_gives() -> None:
    MiscUniqueItem.objects.create(slug="taken")
    with pytest.raises(ValidationError) as from_validation:
        MiscUniqueItem(slug="taken").validate_unique()
    with pytest.raises(ValidationError) as from_database:
        MiscUniqueItem(slug="taken").save()
    assert from_database.value.message_dict == from_validation.value.message_dict


def test_column_names_containing_id_are_not_mangled() -> None:
    # The old parser replaced "_id" anywhere: owner_identity -> ownerentity, so no field matched.
    MiscUniqueItem.objects.create(slug="a", owner_identity="alice")
    with pytest.raises(ValidationError) as excinfo:
        MiscUniqueItem(slug="b", owner_identity="alice").save()
    assert list(errors_of(excinfo)) == ["owner_identity"]


def test_duplicate_primary_key_becomes_a_field_error() -> None:
    item = MiscUniqueItem.objects.create(slug="a")
    with pytest.raises(ValidationError) as excinfo:
        MiscUniqueItem(pk=item.pk, slug="b").save(force_insert=True)
    assert errors_of(excinfo) == {"id": ["Misc unique item with this ID already exists."]}


def test_update_that_collides_is_converted_too() -> None:
    MiscUniqueItem.objects.create(slug="a")
    second = MiscUniqueItem.objects.create(slug="b")
    second.slug = "a"
    with pytest.raises(ValidationError) as excinfo:
        second.save(update_fields=["slug"])
    assert list(errors_of(excinfo)) == ["slug"]
    second.refresh_from_db()
    assert second.slug == "b"


def test_callers_transaction_stays_usable_after_a_conversion() -> None:
    MiscUniqueItem.objects.create(slug="taken")
    with transaction.atomic():
        with pytest.raises(ValidationError):
            MiscUniqueItem(slug="taken").save()
        # On PostgreSQL this query fails ("current transaction is aborted") without a savepoint.
        MiscUniqueItem.objects.create(slug="free")
        assert not transaction.get_rollback()
    assert set(MiscUniqueItem.objects.values_list("slug", flat=True)) == {"taken", "free"}


def test_instance_can_be_fixed_and_saved_again() -> None:
    MiscUniqueItem.objects.create(slug="taken")
    item = MiscUniqueItem(slug="taken")
    with pytest.raises(ValidationError):
        item.save()
    assert item.pk is None and item._state.adding
    item.slug = "free"
    item.save()
    assert MiscUniqueItem.objects.get(pk=item.pk).slug == "free"


def test_save_runs_in_a_savepoint() -> None:
    with CaptureQueriesContext(connection) as queries:
        MiscUniqueItem(slug="a").save()
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements.count("INSERT") == 1
    assert "SAVEPOINT" in statements


def test_other_integrity_errors_propagate_unchanged() -> None:
    with pytest.raises(IntegrityError):
        MiscUniqueItem(slug=None).save()  # type: ignore[misc]


def test_conversion_can_be_turned_off() -> None:
    MiscUnconvertedItem.objects.create(slug="taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        MiscUnconvertedItem(slug="taken").save()


#: Stands for a fresh ``MiscOwner`` in the rows of ``REFUSALS``.
OWNER = object()

TOGETHER = "Misc unique together item with this"


def refusal(
    name: str,
    model: type[Model],
    existing: dict[str, Any],
    changes: dict[str, Any],
    expected: dict[str, list[str]],
    method: str = "save",
    feature: str | None = None,
) -> Any:
    """A case of the test below: a ``model`` row of ``existing``, then the one of ``existing``
    with ``changes`` (a duplicate) refused by ``method`` with ``expected``; ``feature`` is the
    database feature the case needs."""
    return pytest.param(model, existing, existing | changes, method, expected, feature, id=name)


REFUSALS = [
    refusal(
        "db_column_is_mapped_back_to_its_field",
        MiscUniqueItem,
        {"slug": "a", "external_id": "X-1"},
        {"slug": "b"},
        {"external_id": ["Misc unique item with this External id already exists."]},
    ),
    refusal(
        "unique_together_error_moves_to_the_one_visible_field",
        MiscUniqueTogetherItem,
        {"owner": OWNER, "name": "report", "code": "1"},
        {"code": "2"},
        {"name": [f"{TOGETHER} Name already exists."]},
    ),
    refusal(
        "unique_together_with_several_visible_fields_names_only_them",
        MiscUniqueTogetherItem,
        {"owner": OWNER, "name": "a", "code": "C", "kind": "K"},
        {"name": "b"},
        {NON_FIELD_ERRORS: [f"{TOGETHER} Code and Kind already exists."]},
    ),
    refusal(
        "validate_unique_hides_fields_the_same_way",
        MiscUniqueTogetherItem,
        {"owner": OWNER, "name": "report", "code": "C", "kind": "K"},
        {},
        {
            "name": [f"{TOGETHER} Name already exists."],
            NON_FIELD_ERRORS: [f"{TOGETHER} Code and Kind already exists."],
        },
        "validate_unique",
    ),
    refusal(
        "validate_unique_keeps_errors_whose_fields_are_all_hidden",
        MiscUniqueTogetherItem,
        {"owner": OWNER, "name": "a", "code": "1", "position": 3},
        {"name": "b", "code": "2"},
        {NON_FIELD_ERRORS: [f"{TOGETHER} Owner and Position already exists."]},
        "validate_unique",
    ),
    refusal(
        "unique_constraint_on_fields_with_db_columns",
        MiscConstraintItem,
        {"tenant": OWNER, "code": "A", "label": "one"},
        {"label": "two"},
        {NON_FIELD_ERRORS: ["Misc constraint item with this Tenant and Code already exists."]},
    ),
    refusal(
        "expression_unique_constraint",
        MiscExpressionConstraintItem,
        {"name": "Alice"},
        {"name": "ALICE"},
        {NON_FIELD_ERRORS: ["Names are unique whatever their case."]},
        "save",
        "supports_expression_indexes",
    ),
]


@pytest.mark.parametrize(
    ("model", "existing", "duplicate", "method", "expected", "feature"), REFUSALS
)
def test_a_duplicate_is_refused_with_the_errors_of_its_fields(
    model: type[Model],
    existing: dict[str, Any],
    duplicate: dict[str, Any],
    method: str,
    expected: dict[str, list[str]],
    feature: str | None,
) -> None:
    if feature is not None and not getattr(connection.features, feature):
        pytest.skip(f"{connection.display_name} lacks {feature}")
    owner = MiscOwner.objects.create(name="o")

    def values(row: dict[str, Any]) -> dict[str, Any]:
        return {name: owner if value is OWNER else value for name, value in row.items()}

    model._default_manager.create(**values(existing))
    with pytest.raises(ValidationError) as excinfo:
        getattr(model(**values(duplicate)), method)()
    assert errors_of(excinfo) == expected
    if method == "save" and NON_FIELD_ERRORS in expected and model is MiscUniqueTogetherItem:
        assert codes_of(excinfo) == {NON_FIELD_ERRORS: ["unique_together"]}


def test_conditional_unique_constraint() -> None:
    if not connection.features.supports_partial_indexes:
        pytest.skip(f"{connection.display_name} has no partial unique indexes")
    MiscConditionalConstraintItem.objects.create(code="A")
    MiscConditionalConstraintItem.objects.create(code="A", archived=True)
    with pytest.raises(ValidationError) as excinfo:
        MiscConditionalConstraintItem(code="A").save()
    assert errors_of(excinfo) == {NON_FIELD_ERRORS: ["A live item already uses this code."]}


def test_violation_of_hidden_fields_only_reraises_the_integrity_error() -> None:
    owner = MiscOwner.objects.create(name="o")
    MiscUniqueTogetherItem.objects.create(owner=owner, name="a", code="1", position=1)
    with pytest.raises(IntegrityError):
        MiscUniqueTogetherItem(owner=owner, name="b", code="2", position=1).save()
    # The row is not silently dropped, and the transaction is still usable.
    assert MiscUniqueTogetherItem.objects.count() == 1


def test_unique_constraint_custom_message_and_code_are_kept() -> None:
    tenant = MiscOwner.objects.create(name="t")
    MiscConstraintItem.objects.create(tenant=tenant, code="A", label="one")
    with pytest.raises(ValidationError) as from_database:
        MiscConstraintItem(tenant=tenant, code="B", label="one").save()
    with pytest.raises(ValidationError) as from_validation:
        MiscConstraintItem(tenant=tenant, code="B", label="one").validate_constraints()
    assert errors_of(from_database) == {NON_FIELD_ERRORS: ["This label is taken."]}
    assert codes_of(from_database) == {NON_FIELD_ERRORS: ["label_taken"]}
    assert errors_of(from_database) == errors_of(from_validation)


def test_multi_table_inheritance_parent_and_child_tables() -> None:
    MiscUniqueChild.objects.create(reference="R1", serial="S1")
    with pytest.raises(ValidationError) as on_parent:
        MiscUniqueChild(reference="R1", serial="S2").save()
    assert errors_of(on_parent) == {
        "reference": ["Misc unique parent with this Reference already exists."]
    }
    child = MiscUniqueChild(reference="R2", serial="S1")
    with pytest.raises(ValidationError) as on_child:
        child.save()
    assert errors_of(on_child) == {"serial": ["Misc unique child with this Serial already exists."]}
    # The parent row inserted before the child failed was rolled back with the savepoint, and
    # the instance forgot its pk: saving it again after a fix works.
    assert child.pk is None and child.id is None
    assert not MiscUniqueParent.objects.filter(reference="R2").exists()
    child.serial = "S2"
    child.save()
    assert MiscUniqueChild.objects.get(pk=child.pk).reference == "R2"


def test_asave_converts_too() -> None:
    MiscUniqueItem.objects.create(slug="taken")

    async def main() -> None:
        with pytest.raises(ValidationError) as excinfo:
            await MiscUniqueItem(slug="taken").asave()
        assert list(excinfo.value.message_dict) == ["slug"]

    async_to_sync(main)()


def test_unknown_save_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bogus"):
        MiscUniqueItem(slug="a").save(bogus=True)
    assert not MiscUniqueItem.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_conversion_works_and_commits_nothing() -> None:
    MiscUniqueItem.objects.create(slug="taken")
    with pytest.raises(ValidationError):
        MiscUniqueItem(slug="taken", title="lost").save()
    assert not MiscUniqueItem.objects.filter(title="lost").exists()
    assert connection.get_autocommit()
