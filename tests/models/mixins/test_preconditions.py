"""UpdatePreconditionsMixin: conditional UPDATEs, deleted rows, multi-table inheritance."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from keel.exceptions import DatabaseUpdatePreconditionsError, KeelError, RowDeletedError
from tests.testapp.models.mixins_core import VersionedChild, VersionedDoc

pytestmark = pytest.mark.django_db


def _writes(ctx: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].upper().startswith(("UPDATE", "INSERT", "DELETE"))
    ]


def _where(sql: str) -> str:
    """The WHERE clause, table names removed (they contain "version")."""
    where = sql.split(" WHERE ", 1)[1]
    for model in (VersionedDoc, VersionedChild, VersionedChild._meta.get_parent_list()[0]):
        where = where.replace(model._meta.db_table, "T")
    return where


def _doc() -> VersionedDoc:
    return VersionedDoc.objects.create(name="a", version=1)


def test_a_matching_precondition_updates_in_one_statement() -> None:
    doc = _doc()
    doc.name = "b"
    doc.version = 2
    with CaptureQueriesContext(connection) as ctx:
        doc.save(pre_filters={"version": 1})
    (sql,) = _writes(ctx)
    assert sql.upper().startswith("UPDATE")
    assert "version" in _where(sql)
    assert VersionedDoc.objects.get(pk=doc.pk).name == "b"


def test_a_concurrent_change_raises_with_model_pk_and_conditions() -> None:
    doc = _doc()
    VersionedDoc.objects.filter(pk=doc.pk).update(version=2, name="theirs")
    doc.name = "mine"
    with pytest.raises(DatabaseUpdatePreconditionsError) as info:
        doc.save(pre_filters={"version": 1}, pre_excludes={"status": "archived"})
    error = info.value
    assert isinstance(error, KeelError)
    assert error.model is VersionedDoc
    assert error.pk == doc.pk
    assert error.conditions == {"filters": {"version": 1}, "excludes": {"status": "archived"}}
    assert "version" in str(error)
    assert VersionedDoc.objects.get(pk=doc.pk).name == "theirs"


def test_excludes_guard_the_update() -> None:
    doc = _doc()
    VersionedDoc.objects.filter(pk=doc.pk).update(status="archived")
    doc.name = "mine"
    with pytest.raises(DatabaseUpdatePreconditionsError):
        doc.save(pre_excludes={"status": "archived"})


def test_a_deleted_row_raises_a_distinct_error_and_is_not_reinserted() -> None:
    """Fixed: a concurrently deleted row was resurrected by an INSERT."""
    doc = _doc()
    VersionedDoc.objects.filter(pk=doc.pk).delete()
    doc.name = "mine"
    with CaptureQueriesContext(connection) as ctx, pytest.raises(RowDeletedError) as info:
        doc.save(pre_filters={"version": 1})
    assert not isinstance(info.value, DatabaseUpdatePreconditionsError)
    assert (info.value.model, info.value.pk) == (VersionedDoc, doc.pk)
    assert not any(sql.upper().startswith("INSERT") for sql in _writes(ctx))
    assert not VersionedDoc.objects.filter(pk=doc.pk).exists()


def test_failures_do_not_poison_the_callers_transaction() -> None:
    doc = _doc()
    VersionedDoc.objects.filter(pk=doc.pk).update(version=5)
    with transaction.atomic():
        doc.name = "mine"
        with pytest.raises(DatabaseUpdatePreconditionsError):
            doc.save(pre_filters={"version": 1})
        # The block is still usable: no TransactionManagementError.
        VersionedDoc.objects.create(name="after", version=0)
    assert VersionedDoc.objects.filter(name="after").exists()


def test_without_preconditions_the_save_is_plain() -> None:
    doc = _doc()
    doc.name = "b"
    with CaptureQueriesContext(connection) as ctx:
        doc.save()
    (sql,) = _writes(ctx)
    assert "version" not in _where(sql)


def test_inserts_are_not_guarded() -> None:
    doc = VersionedDoc(name="new")
    doc.save(pre_filters={"version": 99})
    assert VersionedDoc.objects.filter(name="new").exists()


def test_preconditions_apply_to_one_save_only() -> None:
    doc = _doc()
    doc.save(pre_filters={"version": 1})
    VersionedDoc.objects.filter(pk=doc.pk).update(version=7)
    doc.name = "again"
    doc.save()  # the conditions of the previous save are gone
    assert VersionedDoc.objects.get(pk=doc.pk).name == "again"


def test_bad_precondition_values_are_a_clear_error_and_write_nothing() -> None:
    doc = _doc()
    doc.name = "b"
    with pytest.raises(TypeError, match="mapping of field lookups"):
        doc.save(pre_filters=["version"])
    assert VersionedDoc.objects.get(pk=doc.pk).name == "a"


def test_multi_table_conditions_are_checked_once_by_the_first_update() -> None:
    """Fixed: child-field filters raised FieldError; then every table re-checked the
    conditions after the parent table was already written (see test_mixins_core_guards)."""
    child = VersionedChild.objects.create(name="p", version=1, extra="x")
    child.name = "p2"
    child.extra = "x2"
    with CaptureQueriesContext(connection) as ctx:
        child.save(pre_filters={"version": 1, "locked": False})
    first, second = [s for s in _writes(ctx) if s.upper().startswith("UPDATE")]
    assert "locked" in _where(first)
    assert "version" in _where(first)
    assert "locked" not in _where(second)
    assert "version" not in _where(second).replace("versionedparent_ptr_id", "")
    row = VersionedChild.objects.get(pk=child.pk)
    assert (row.name, row.extra) == ("p2", "x2")


@pytest.mark.parametrize("column", ["version", "locked"])
def test_multi_table_conflict_on_any_table_writes_nothing(column: str) -> None:
    child = VersionedChild.objects.create(name="p", version=1, extra="x")
    VersionedChild.objects.filter(pk=child.pk).update(
        **{column: 2 if column == "version" else True}
    )
    child.name = "p2"
    child.extra = "x2"
    with pytest.raises(DatabaseUpdatePreconditionsError):
        child.save(pre_filters={"version": 1, "locked": False})
    row = VersionedChild.objects.get(pk=child.pk)
    assert (row.name, row.extra) == ("p", "x")


def test_multi_table_deleted_row_is_not_reinserted() -> None:
    child = VersionedChild.objects.create(name="p", version=1)
    VersionedChild.objects.filter(pk=child.pk).delete()
    child.name = "p2"
    with pytest.raises(RowDeletedError):
        child.save(pre_filters={"version": 1})
    assert not VersionedChild.objects.exists()


def test_asave_forwards_preconditions() -> None:
    """Fixed: asave() could not pass pre_filters."""
    doc = _doc()
    VersionedDoc.objects.filter(pk=doc.pk).update(version=3)
    doc.name = "mine"
    with pytest.raises(DatabaseUpdatePreconditionsError):
        async_to_sync(doc.asave)(pre_filters={"version": 1})
    async_to_sync(doc.asave)(pre_filters={"version": 3})
    assert VersionedDoc.objects.get(pk=doc.pk).name == "mine"


def test_unknown_options_are_refused_not_swallowed() -> None:
    """Fixed: leftover save options were silently swallowed."""
    doc = _doc()
    with pytest.raises(TypeError, match="foo"):
        doc.save(pre_filters={"version": 1}, foo=1)


@pytest.mark.django_db(transaction=True)
def test_two_racing_saves_with_the_same_precondition_let_one_win() -> None:
    import threading

    doc = _doc()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker(name: str) -> None:
        from django.db import connections

        mine = VersionedDoc.objects.get(pk=doc.pk)
        mine.name = name
        mine.version = 2
        barrier.wait()
        try:
            mine.save(pre_filters={"version": 1})
            outcomes.append("ok")
        except DatabaseUpdatePreconditionsError:
            outcomes.append("conflict")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    assert VersionedDoc.objects.get(pk=doc.pk).version == 2
