from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def keep_launched_audiences(apps, schema_editor):
    """Campaigns launched already chunk from their segment's rules as they are now."""
    Campaign = apps.get_model("campaigns", "Campaign")
    Segment = apps.get_model("crm", "Segment")
    Campaign.objects.filter(launched_at__isnull=False).update(
        audience_rules=Subquery(
            Segment.objects.filter(pk=OuterRef("segment_id")).values("rules")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_install_schedules"),
        ("crm", "0003_lead_org_id_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="audience_rules",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(keep_launched_audiences, migrations.RunPython.noop),
    ]
