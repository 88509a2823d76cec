"""keel.compat: each hook for a private name does, on the installed Django, what keel relies on.

CI runs this module under every Django release of ``keel.compat.SUPPORTED``; a release that
renames or changes one of these internals fails here first.
"""

from __future__ import annotations

import argparse
import datetime
import decimal

import pytest
from django.contrib.auth.models import User
from django.core import checks
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.test.utils import override_settings
from django.utils import timezone

from keel import compat
from keel.models import ActionCounter
from tests.testapp.models.fixtures import FixtureArticle, FixtureTag
from tests.testapp.models.mixins_core import (
    CompositeItem,
    Purchase,
    ReadOnlyStatePurchase,
    TrackedChild,
    TrackedItem,
    TrackedParent,
)


def test_concrete_model_of_a_proxy_is_the_model_it_proxies() -> None:
    assert compat.concrete_model(ReadOnlyStatePurchase) is Purchase
    assert compat.concrete_model(Purchase) is Purchase


def test_parent_models_are_the_concrete_parents_nearest_first() -> None:
    assert compat.parent_models(TrackedChild) == [TrackedParent]
    assert compat.parent_models(TrackedParent) == []


def test_pk_fields_lists_each_column_of_a_composite_key() -> None:
    assert [f.name for f in compat.pk_fields(CompositeItem)] == ["tenant", "code"]
    assert [f.name for f in compat.pk_fields(TrackedItem)] == ["id"]
    assert [f.name for f in compat.pk_fields(TrackedChild)] == ["trackedparent_ptr"]


def test_pk_fields_accepts_an_instance() -> None:
    assert compat.pk_fields(CompositeItem(tenant=1, code="a")) == compat.pk_fields(CompositeItem)


def test_is_auto_created_tells_a_generated_through_model() -> None:
    through = FixtureArticle._meta.get_field("tags").remote_field.through  # type: ignore[union-attr]
    assert compat.is_auto_created(through)
    assert not compat.is_auto_created(FixtureTag)


def test_many_to_many_lists_forward_fields_only() -> None:
    assert [f.name for f in compat.many_to_many(FixtureArticle)] == ["tags"]
    assert list(compat.many_to_many(FixtureTag)) == []  # the reverse "articles" is not one


def test_is_swapped_follows_auth_user_model() -> None:
    assert not compat.is_swapped(User)
    with override_settings(AUTH_USER_MODEL="testapp.FixtureTag"):
        assert compat.is_swapped(User)


def test_backend_feature_flags_match_the_vendor() -> None:
    vendor = connection.vendor
    assert compat.supports_select_for_update(connection) is (vendor != "sqlite")
    assert compat.supports_conflict_target(connection) is (vendor != "mysql")
    assert compat.supports_nulls_distinct(connection) is (vendor == "postgresql")
    assert isinstance(compat.can_return_rows_from_insert(connection), bool)
    if vendor == "postgresql":
        assert compat.can_return_rows_from_insert(connection)


@pytest.mark.django_db(transaction=True)
def test_in_atomic_block_follows_atomic() -> None:
    assert not compat.in_atomic_block(connection)
    with transaction.atomic():
        assert compat.in_atomic_block(connection)
    assert not compat.in_atomic_block(connection)


def test_quoter_quotes_for_the_backend() -> None:
    quote = compat.quoter(connection)
    assert quote("a_table") in {'"a_table"', "`a_table`"}
    assert quote(quote("a_table")) == quote("a_table")  # already quoted: unchanged


@pytest.mark.django_db
def test_sequence_reset_sql_moves_the_sequence_past_existing_rows() -> None:
    TrackedItem.objects.create(id=50, name="preset")
    with connection.cursor() as cursor:
        for sql in compat.sequence_reset_sql(connection, [TrackedItem]):
            cursor.execute(sql)
    assert TrackedItem.objects.create(name="next").pk > 50


@pytest.mark.django_db
def test_adapt_datetime_matches_what_the_orm_stored() -> None:
    value = timezone.now().replace(microsecond=123456)
    ActionCounter.objects.create(key="k", purpose="p", expires_at=value)
    table = compat.quoter(connection)(ActionCounter._meta.db_table)
    column = compat.quoter(connection)("expires_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {table} WHERE {column} = %s",
            [compat.adapt_datetime(connection, value)],
        )
        assert cursor.fetchone()[0] == 1


def test_value_adapter_is_the_backend_s_date_adapter() -> None:
    adapt = compat.value_adapter(connection, "adapt_datefield_value")
    assert adapt is None or adapt(datetime.date(2024, 2, 29)) == "2024-02-29"
    with pytest.raises(ValueError, match="quote_name"):
        compat.value_adapter(connection, "quote_name")


@pytest.mark.parametrize(
    "value",
    [
        decimal.Decimal("12.10"),
        datetime.date(2024, 2, 29),
        datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.UTC),
    ],
    ids=["decimal", "date", "datetime"],
)
def test_pass_through_adapters_return_what_they_are_given(value: object) -> None:
    """On this Django, each adapter keel leaves out of a bulk load returns its value as it is,
    for the type of value it adapts."""
    from django.db.backends.base.operations import BaseDatabaseOperations

    kind = type(value).__name__.lower()
    adapters = [
        adapter
        for adapter in compat.pass_through_adapters()
        if adapter.__name__ == f"adapt_{kind}field_value"
    ]
    assert adapters or kind != "decimal"
    for adapter in adapters:
        assert adapter(BaseDatabaseOperations(connection), value) is value


def test_value_adapter_is_none_where_the_backend_passes_values_through() -> None:
    decimals = compat.value_adapter(connection, "adapt_decimalfield_value")
    assert decimals is None
    dates = compat.value_adapter(connection, "adapt_datefield_value")
    assert (dates is None) == (connection.vendor == "postgresql")


@pytest.mark.django_db
def test_db_default_sql_selects_the_column_default() -> None:
    from django.db import models
    from django.db.models.functions import Lower
    from django.test.utils import isolate_apps

    with isolate_apps("tests.testapp"):

        class Defaults(models.Model):
            n = models.IntegerField(db_default=7)
            tag = models.CharField(max_length=9, db_default=Lower(models.Value("ABC")))
            note = models.CharField(max_length=9, db_default="50%s off")

            class Meta:
                app_label = "testapp"

    found = []
    with connection.cursor() as cursor:
        for name in ("n", "tag", "note"):
            sql, params = compat.db_default_sql(connection, Defaults._meta.get_field(name))
            cursor.execute(f"SELECT {sql}", params)
            found.append(cursor.fetchone()[0])
    assert found == [7, "abc", "50%s off"]


def test_option_destinations_of_a_command_parser() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    assert {"force", "dry_run", "help"} <= compat.option_destinations(parser)


def test_duration_iso_string_is_what_djangos_json_encoder_writes() -> None:
    value = datetime.timedelta(days=1, hours=2, microseconds=5)
    assert compat.duration_iso_string(value) == DjangoJSONEncoder().default(value)
    assert compat.duration_iso_string(value) == "P1DT02H00M00.000005S"


def test_model_state_is_the_class_of_model_state() -> None:
    state = compat.ModelState()
    assert type(TrackedItem()._state) is compat.ModelState
    assert state.adding is True and state.db is None


def test_deferred_attribute_is_the_descriptor_of_a_plain_field() -> None:
    assert isinstance(TrackedItem.__dict__["name"], compat.DeferredAttribute)


def test_test_context_decorator_works_as_decorator_and_context_manager() -> None:
    events: list[str] = []

    class Mark(compat.TestContextDecorator):
        def enable(self) -> None:
            events.append("on")

        def disable(self) -> None:
            events.append("off")

    with Mark():
        events.append("body")

    @Mark()
    def function() -> None:
        events.append("call")

    function()
    assert events == ["on", "body", "off", "on", "call", "off"]


def test_base_database_cache_is_the_base_of_djangos_database_cache() -> None:
    from django.core.cache.backends.db import DatabaseCache

    assert issubclass(DatabaseCache, compat.BaseDatabaseCache)


@pytest.mark.django_db(databases="__all__")  # model checks read every database's features
def test_check_supported_is_silent_on_a_supported_django() -> None:
    assert compat.check_supported() == []
    assert [m for m in checks.run_checks() if m.id == "keel.W011"] == []
