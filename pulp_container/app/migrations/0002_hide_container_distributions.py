"""Container distributions are served by the registry only: hide them from the content app."""

from django.db import migrations


def hide(apps, schema_editor):
    apps.get_model("container", "ContainerDistribution").objects.update(hidden=True)


class Migration(migrations.Migration):
    dependencies = [("container", "0001_initial")]

    operations = [migrations.RunPython(hide, migrations.RunPython.noop, elidable=True)]
