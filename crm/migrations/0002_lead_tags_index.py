"""A GIN index on Lead.tags for segment rules on tags (Postgres only).

A tag rule compiles to `tags @> '["vip"]'`: without this index a preview over
1,000,000 leads scanned them all (0.4-0.6 s). SQLite, the embedded default, has no
such index type and no such operator; there the migration does nothing.
"""

from django.db import migrations

INDEX = "lead_tags_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON crm_lead"
            " USING gin (tags jsonb_path_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
