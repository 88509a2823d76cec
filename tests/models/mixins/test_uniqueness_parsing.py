"""How each driver's uniqueness error is read, including shapes the test servers do not produce.

The end-to-end tests (test_mixins_misc_uniqueness.py) cover the real server of the run; these
build the errors with the exact argument shapes the drivers use, so that every backend's parser
is checked on every run.
"""

from __future__ import annotations

from django.db import IntegrityError

from keel.models.mixins.uniqueness import _parse_violation, _Violation

TABLES = ["shop_order_item", "shop_order"]


def error(*args: object, cause: BaseException | None = None) -> IntegrityError:
    exc = IntegrityError(*args)
    exc.__cause__ = cause
    return exc


def test_mariadb_key_name() -> None:
    exc = error(1062, "Duplicate entry 'A-1' for key 'shop_order_code_uniq'")
    assert _parse_violation(exc, "mysql", TABLES) == _Violation(name="shop_order_code_uniq")


def test_mysql_8_key_name_qualified_with_its_table() -> None:
    exc = error(1062, "Duplicate entry 'A-1' for key 'shop_order_item.shop_order_item_sku_uniq'")
    assert _parse_violation(exc, "mysql", TABLES) == _Violation(
        name="shop_order_item_sku_uniq", table="shop_order_item"
    )


def test_mysql_duplicate_value_containing_quotes_and_the_word_key() -> None:
    exc = error(1062, "Duplicate entry 'it's for key 'x'' for key 'PRIMARY'")
    assert _parse_violation(exc, "mysql", TABLES) == _Violation(name="PRIMARY")


def test_mysql_other_integrity_errors_are_not_uniqueness() -> None:
    exc = error(1452, "Cannot add or update a child row: a foreign key constraint fails")
    assert _parse_violation(exc, "mysql", TABLES) is None
    assert _parse_violation(error(1048, "Column 'code' cannot be null"), "mysql", TABLES) is None


def test_sqlite_columns_with_id_in_their_names_and_the_longest_table_first() -> None:
    exc = error("UNIQUE constraint failed: shop_order_item.order_id, shop_order_item.paid_identity")
    assert _parse_violation(exc, "sqlite", TABLES) == _Violation(
        qualified=(("shop_order_item", "order_id"), ("shop_order_item", "paid_identity"))
    )


def test_sqlite_expression_index() -> None:
    exc = error("UNIQUE constraint failed: index 'shop_order_code_ci'")
    assert _parse_violation(exc, "sqlite", TABLES) == _Violation(name="shop_order_code_ci")


def test_sqlite_other_integrity_errors_are_not_uniqueness() -> None:
    assert _parse_violation(error("FOREIGN KEY constraint failed"), "sqlite", TABLES) is None
    exc = error("NOT NULL constraint failed: shop_order.code")
    assert _parse_violation(exc, "sqlite", TABLES) is None


def test_sqlite_column_of_a_table_the_model_does_not_own() -> None:
    exc = error("UNIQUE constraint failed: other_table.code")
    assert _parse_violation(exc, "sqlite", TABLES) is None


class Diag:
    constraint_name = "shop_order_code_key"
    table_name = "shop_order"
    message_detail = 'Key (code, "Region")=(A, eu) already exists.'


class UniqueViolation(Exception):
    """The attributes psycopg 3 (``sqlstate``) and psycopg2 (``pgcode``) errors carry."""

    def __init__(self, code_attribute: str, code: str) -> None:
        super().__init__("duplicate key value violates unique constraint")
        setattr(self, code_attribute, code)
        self.diag = Diag()


def test_postgresql_psycopg3_and_psycopg2_diagnostics() -> None:
    for attribute in ("sqlstate", "pgcode"):
        exc = error("duplicate key", cause=UniqueViolation(attribute, "23505"))
        assert _parse_violation(exc, "postgresql", TABLES) == _Violation(
            name="shop_order_code_key", table="shop_order", columns=("code", "Region")
        )


def test_postgresql_other_integrity_errors_are_not_uniqueness() -> None:
    foreign_key = error("fk", cause=UniqueViolation("sqlstate", "23503"))
    assert _parse_violation(foreign_key, "postgresql", TABLES) is None
    assert _parse_violation(error("no cause"), "postgresql", TABLES) is None


def test_unknown_backend_is_left_alone() -> None:
    assert _parse_violation(error("ORA-00001: unique constraint"), "oracle", TABLES) is None
