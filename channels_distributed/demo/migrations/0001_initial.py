from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Task",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("text", models.CharField(max_length=200)),
                ("status", models.CharField(default="queued", max_length=20)),
                ("result", models.CharField(blank=True, max_length=200)),
                ("worker_pid", models.IntegerField(null=True)),
                ("queued_by_pid", models.IntegerField()),
            ],
        ),
    ]
