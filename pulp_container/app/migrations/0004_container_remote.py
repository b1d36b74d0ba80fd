"""Container remotes: another registry's repository to mirror from."""

import django.contrib.postgres.fields
import django.db.models.deletion
import pulpcore.app.models.access_policy
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("container", "0003_upload_started_by")]

    operations = [
        migrations.CreateModel(
            name="ContainerRemote",
            fields=[
                (
                    "remote_ptr",
                    models.OneToOneField(
                        auto_created=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        parent_link=True,
                        primary_key=True,
                        serialize=False,
                        to="core.remote",
                    ),
                ),
                ("upstream_name", models.TextField(db_index=True)),
                (
                    "include_tags",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), null=True, size=None
                    ),
                ),
                (
                    "exclude_tags",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), null=True, size=None
                    ),
                ),
            ],
            options={
                "permissions": [
                    ("manage_roles_containerremote", "Can manage roles on container remotes"),
                ],
                "default_related_name": "%(app_label)s_%(model_name)s",
            },
            bases=("core.remote", pulpcore.app.models.access_policy.AutoAddObjPermsMixin),
        ),
    ]
