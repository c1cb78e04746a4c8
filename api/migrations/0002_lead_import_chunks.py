import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.models.functions import Coalesce

UNFINISHED = ["queued", "running"]


def content_to_chunks(apps, schema_editor):
    """Unfinished imports keep their file, as one chunk; finished ones held none."""
    LeadImport = apps.get_model("api", "LeadImport")
    LeadImportChunk = apps.get_model("api", "LeadImportChunk")
    unfinished = LeadImport.objects.filter(status__in=UNFINISHED)
    for pk in unfinished.values_list("pk", flat=True).iterator():
        content = LeadImport.objects.values_list("content", flat=True).get(pk=pk)
        LeadImportChunk.objects.create(lead_import_id=pk, index=0, data=content)
    unfinished.update(heartbeat_at=Coalesce("started_at", "created_at"))
    for upload in LeadImport.objects.exclude(rejected=[]).only("rejected").iterator():
        upload.rejected_count = len(upload.rejected)
        upload.save(update_fields=["rejected_count"])


class Migration(migrations.Migration):

    dependencies = [
        ('api', '0001_initial'),
        ('crm', '0003_lead_org_id_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='LeadImportChunk',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('index', models.PositiveIntegerField()),
                ('data', models.BinaryField()),
            ],
        ),
        migrations.AddField(
            model_name='leadimport',
            name='heartbeat_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name='leadimport',
            name='attempts',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='leadimport',
            name='rejected_count',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name='leadimport',
            index=models.Index(condition=models.Q(('status__in', ['queued', 'running'])), fields=['heartbeat_at'], name='lead_import_unfinished'),
        ),
        migrations.AddField(
            model_name='leadimportchunk',
            name='lead_import',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='chunks', to='api.leadimport'),
        ),
        migrations.AddConstraint(
            model_name='leadimportchunk',
            constraint=models.UniqueConstraint(fields=('lead_import', 'index'), name='lead_import_chunk_order'),
        ),
        migrations.RunPython(content_to_chunks, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='leadimport',
            name='content',
        ),
    ]
