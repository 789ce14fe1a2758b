"""Sealed checkpoints of the ledger; on PostgreSQL the database refuses to change or delete them, as ledger rows."""

import django.utils.timezone
from django.db import migrations, models

TABLE = "escrow_ledgercheckpoint"


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # ledger_refuse_change() is migration 0002's.
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();"
    )


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};")


class Migration(migrations.Migration):

    dependencies = [
        ('escrow', '0006_operations_views_to_settlement'),
    ]

    operations = [
        migrations.CreateModel(
            name='LedgerCheckpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sequence', models.PositiveBigIntegerField(unique=True)),
                ('previous_hash', models.CharField(blank=True, help_text='Empty for the first checkpoint.', max_length=64)),
                ('first_transaction_id', models.BigIntegerField()),
                ('last_transaction_id', models.BigIntegerField(unique=True)),
                ('transaction_count', models.PositiveIntegerField()),
                ('sealed_total', models.PositiveBigIntegerField(help_text='Transactions sealed by this and every earlier checkpoint.')),
                ('digests', models.BinaryField()),
                ('hash', models.CharField(max_length=64, unique=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['sequence'],
                'constraints': [models.CheckConstraint(condition=models.Q(('first_transaction_id__lte', models.F('last_transaction_id'))), name='checkpoint_range_ordered')],
            },
        ),
        migrations.RunPython(create_trigger, drop_trigger),
    ]
