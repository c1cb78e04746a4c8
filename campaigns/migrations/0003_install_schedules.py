from django.db import migrations

from campaigns.schedules import install_in_migration


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install_in_migration, migrations.RunPython.noop)]
