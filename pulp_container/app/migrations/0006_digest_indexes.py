"""Blobs and manifests are found by their unique (digest, domain) index; the second and third
btree indexes on digest alone (plain and text_pattern_ops) only multiplied the writes of every
push and the database's size (issue 14, docs/scaling.md)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("container", "0005_upload_resumable_state"),
    ]

    operations = [
        migrations.AlterField(model_name="blob", name="digest", field=models.TextField()),
        migrations.AlterField(model_name="manifest", name="digest", field=models.TextField()),
    ]
