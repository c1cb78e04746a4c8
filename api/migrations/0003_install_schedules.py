from django.db import migrations

from campaigns.schedules import install_in_migration


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_lead_import_chunks"),
        ("automations", "0002_install_schedules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(install_in_migration, migrations.RunPython.noop)]
