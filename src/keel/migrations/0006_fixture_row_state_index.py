from django.db import migrations, models


class Migration(migrations.Migration):
    """One index on fixture row states instead of two: ``(object_pk, key)`` serves the imports
    (both columns known) and the admin (a row's states by primary key), and each import writes
    one index entry per row less."""

    dependencies = [
        ("keel", "0005_fixture_row_digest"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="fixturerowstate",
            name="keel_fixturerow_key_pk",
        ),
        migrations.RemoveIndex(
            model_name="fixturerowstate",
            name="keel_fixturerow_model_idx",
        ),
        migrations.AddConstraint(
            model_name="fixturerowstate",
            constraint=models.UniqueConstraint(
                fields=("object_pk", "key"), name="keel_fixturerow_pk_key"
            ),
        ),
    ]
