"""Install (or bring back) the periodic tasks beat runs."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django_celery_beat.models import (
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)

from campaigns.schedules import schedules_install


class Command(BaseCommand):
    help = "Install the periodic tasks into django-celery-beat; safe to run again."

    def handle(self, *args, **options):
        tasks = schedules_install(
            interval_model=IntervalSchedule,
            crontab_model=CrontabSchedule,
            task_model=PeriodicTask,
            timezone=settings.TIME_ZONE,
        )
        PeriodicTasks.update_changed()
        for task in tasks:
            self.stdout.write(f"{task.name}: {task.task} ({task.schedule})")
