from django.db import migrations

from campaigns.schedules import install_in_migration


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0002_install_schedules"),
        ("campaigns", "0005_install_completion_sweeper"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install_in_migration, migrations.RunPython.noop)]
