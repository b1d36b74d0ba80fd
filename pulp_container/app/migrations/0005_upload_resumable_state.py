"""Uploads keep their running hash state and where their bytes are (any API host continues one)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("container", "0004_container_remote"),
    ]

    operations = [
        migrations.RemoveField(model_name="blobupload", name="received_digests"),
        migrations.AddField(
            model_name="blobupload", name="hash_state", field=models.JSONField(null=True)
        ),
        migrations.AddField(
            model_name="blobupload", name="storage_state", field=models.JSONField(null=True)
        ),
    ]
