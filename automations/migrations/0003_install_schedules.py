from django.conf import settings
from django.db import migrations

from campaigns.schedules import schedules_install


def install(apps, schema_editor):
    schedules_install(
        interval_model=apps.get_model("django_celery_beat", "IntervalSchedule"),
        crontab_model=apps.get_model("django_celery_beat", "CrontabSchedule"),
        task_model=apps.get_model("django_celery_beat", "PeriodicTask"),
        timezone=settings.TIME_ZONE,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0002_install_schedules"),
        ("campaigns", "0005_install_completion_sweeper"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
