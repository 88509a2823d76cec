from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("keel", "0004_fixture_edits"),
    ]

    operations = [
        migrations.AddField(
            model_name="fixturerowstate",
            name="digest",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
    ]
