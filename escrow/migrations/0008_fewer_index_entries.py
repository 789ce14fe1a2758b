import django.db.models.deletion
from django.db import migrations, models

from crowdfund_site.migration_ops import foreign_key_index_drop


class Migration(migrations.Migration):
    """Fewer index entries per posting and per charge (each pledge makes one of both).

    A transaction's reference had two indexes on PostgreSQL (plain and ``varchar_pattern_ops``);
    one pattern-ops index answers both ``=`` and ``LIKE 'prefix%'``. Only refunds name a charge,
    so the charge's index leaves the charges out.
    """

    dependencies = [
        ("escrow", "0007_ledger_checkpoint"),
    ]

    operations = [
        foreign_key_index_drop(
            app_label="escrow",
            model_name="gatewayoperation",
            field="charge",
            field_after=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="refunds",
                to="escrow.gatewayoperation",
            ),
        ),
        migrations.AlterField(
            model_name="ledgertransaction",
            name="reference",
            field=models.CharField(max_length=120),
        ),
        migrations.AddIndex(
            model_name="gatewayoperation",
            index=models.Index(
                condition=models.Q(("charge__isnull", False)), fields=["charge"], name="gateway_op_charge"
            ),
        ),
        migrations.AddIndex(
            model_name="ledgertransaction",
            index=models.Index(fields=["reference"], name="ledger_txn_reference", opclasses=["varchar_pattern_ops"]),
        ),
    ]
