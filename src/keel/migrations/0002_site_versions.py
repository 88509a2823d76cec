from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("keel", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="SiteVersion",
            fields=[
                ("label", models.CharField(max_length=200, primary_key=True, serialize=False)),
                ("version", models.BigIntegerField(default=0)),
            ],
            options={"verbose_name": "site version", "verbose_name_plural": "site versions"},
        ),
    ]
