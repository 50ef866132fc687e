"""Fill the log entries' tenant columns from their runs; on PostgreSQL, index the
search text by trigram so free text over a 1,000,000-entry org is an index scan.

The trigram index exists only on PostgreSQL (SQLite has no GIN); there the text
filter is a bounded scan of the org's newest entries (see selectors.log_page).
Index and extension come before the backfill: PostgreSQL refuses DDL after rows
with deferred foreign keys changed in the same transaction.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Lower

GIN = "synclog_search_trgm"


def _gin_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {GIN} ON syncengine_synclogentry "
        "USING gin (search_text gin_trgm_ops)"
    )


def _gin_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {GIN}")


def _backfill(apps, schema_editor):
    Entry = apps.get_model("syncengine", "SyncLogEntry")
    Run = apps.get_model("syncengine", "SyncRun")
    run = Run.objects.filter(pk=OuterRef("run_id"))
    Entry.objects.using(schema_editor.connection.alias).filter(membership__isnull=True).update(
        membership_id=Subquery(run.values("membership_id")[:1]),
        organization_id=Subquery(run.values("membership__organization_id")[:1]),
        kind=Subquery(run.values("kind")[:1]),
        search_text=Lower("message"),
    )


class Migration(migrations.Migration):

    dependencies = [
        ("syncengine", "0004_log_entry_tenant_columns"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunPython(_gin_create, _gin_drop),
        migrations.RunPython(_backfill, migrations.RunPython.noop),
    ]
