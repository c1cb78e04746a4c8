from django.db import migrations


def mark_transactional(apps, schema_editor):
    """Reminders' and dunning's dispatches made before the flag existed."""
    AutomationDispatch = apps.get_model("automations", "AutomationDispatch")
    Dispatch = apps.get_model("messaging", "Dispatch")
    Dispatch.objects.filter(
        pk__in=AutomationDispatch.objects.values("dispatch_id")
    ).update(transactional=True)


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0003_install_schedules"),
        ("messaging", "0010_dispatch_transactional"),
    ]

    operations = [
        migrations.RunPython(mark_transactional, migrations.RunPython.noop),
    ]
