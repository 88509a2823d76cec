from typing import Any

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

# The first binary collation without trailing-space padding the server knows: MariaDB's, then
# MySQL 8's; utf8mb4_bin (which pads) where neither exists.
COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin", "utf8mb4_bin")


def binary_object_pk(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
    connection = schema_editor.connection
    if connection.vendor != "mysql":
        return
    model = apps.get_model("keel", "FixtureRowState")
    field = model._meta.get_field("object_pk")
    quote = schema_editor.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN "
            f"({', '.join(['%s'] * len(COLLATIONS))})",
            COLLATIONS,
        )
        known = {name for (name,) in cursor.fetchall()}
    collation = next(name for name in COLLATIONS if name in known or name == COLLATIONS[-1])
    schema_editor.execute(
        f"ALTER TABLE {quote(model._meta.db_table)} MODIFY {quote(field.column)} "
        f"varchar({field.max_length}) CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL"
    )


class Migration(migrations.Migration):
    """MariaDB and MySQL: a row state's primary key is compared byte for byte, as the primary
    keys of a table with a binary collation are (``a`` and ``A``, ``e`` and ``é``, ``a`` and
    ``a `` are two rows there, and two row states here)."""

    dependencies = [
        ("keel", "0006_fixture_row_state_index"),
    ]

    operations = [
        migrations.RunPython(
            binary_object_pk, migrations.RunPython.noop, atomic=False, elidable=False
        ),
    ]
