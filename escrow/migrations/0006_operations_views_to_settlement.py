"""The operations lists and the finance permissions now belong to the settlement app.

State only: proxies have no tables, and settlement.0001 already moved their content types and
the permissions (with every group's grants) to settlement.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("escrow", "0005_suspended_past_deadline"),
        ("settlement", "0001_initial"),
    ]

    operations = [
        migrations.DeleteModel(name="StuckSettlement"),
        migrations.DeleteModel(name="UnconfirmedRefund"),
        migrations.DeleteModel(name="SuspendedPastDeadline"),
        migrations.AlterModelOptions(name="gatewayoperation", options={"ordering": ["-id"]}),
        migrations.AlterModelOptions(name="ledgertransaction", options={"ordering": ["id"]}),
    ]
