"""Upload sessions remember who started them (continuing one under an expired token)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("container", "0002_hide_container_distributions")]

    operations = [
        migrations.AddField(
            model_name="blobupload",
            name="started_by",
            field=models.TextField(default=""),
        ),
    ]
