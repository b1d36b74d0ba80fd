"""The permissions' descriptions in our own words (codenames unchanged); existing rows follow."""

from django.db import migrations

DESCRIPTIONS = {
    "containerdistribution": {
        "pull_images": "Pull from the repository served at this name",
        "push_images": "Push to the repository served at this name",
        "delete_images": "Delete tags, manifests, blobs at this name",
        "manage_roles_containerdistribution": "Grant and revoke roles on this distribution",
    },
    "containernamespace": {
        "namespace_pull_images": "Pull from every repository under this namespace",
        "namespace_push_images": "Push to every repository under this namespace",
        "namespace_delete_images": "Delete tags, manifests, blobs under this namespace",
        "namespace_create_repositories": "Start new repositories under this namespace",
        "manage_roles_containernamespace": "Grant and revoke roles on this namespace",
    },
    "containerremote": {
        "manage_roles_containerremote": "Grant and revoke roles on this remote",
    },
}


def rename_existing(apps, schema_editor):
    """Django creates permission rows once; those of an existing database get the new text."""
    Permission = apps.get_model("auth", "Permission")
    for model, descriptions in DESCRIPTIONS.items():
        for codename, name in descriptions.items():
            Permission.objects.filter(
                content_type__app_label="container", content_type__model=model, codename=codename
            ).update(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("container", "0006_digest_indexes"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        *(
            migrations.AlterModelOptions(
                name=model,
                options={
                    "default_related_name": "%(app_label)s_%(model_name)s",
                    "permissions": list(descriptions.items()),
                },
            )
            for model, descriptions in DESCRIPTIONS.items()
        ),
        migrations.RunPython(rename_existing, migrations.RunPython.noop),
    ]
