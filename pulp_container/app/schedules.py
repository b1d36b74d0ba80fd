"""The plugin's scheduled tasks, written at every ``migrate`` (as pulpcore writes its own)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from pulpcore.plugin.models import TaskSchedule

EXPIRY_SCHEDULE = "Expire idle container pushes"
EXPIRY_TASK = "pulp_container.app.tasks.expire_idle_pushes"


def configure_schedules(**kwargs) -> None:
    """post_migrate receiver: the expiry schedule, or none when its interval is 0."""
    interval = int(settings.CONTAINER_PUSH_EXPIRY_INTERVAL)
    if interval > 0:
        TaskSchedule.objects.update_or_create(
            name=EXPIRY_SCHEDULE,
            defaults={"task_name": EXPIRY_TASK, "dispatch_interval": timedelta(seconds=interval)},
        )
    else:
        TaskSchedule.objects.filter(task_name=EXPIRY_TASK).delete()
