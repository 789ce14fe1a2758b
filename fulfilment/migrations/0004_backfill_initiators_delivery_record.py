from django.db import migrations
from django.db.models import Q


def mark_initiators(apps, schema_editor):
    """Set ``User.has_delivery_record`` for initiators with a milestone plan, a shipment or a declared tier."""
    Campaign = apps.get_model("projects", "Campaign")
    User = apps.get_model("accounts", "User")
    promised = Campaign.objects.filter(
        Q(has_milestone_plan=True) | Q(shipments__isnull=False) | Q(non_deliveries__isnull=False)
    ).values("initiator_id")
    User.objects.filter(pk__in=promised).update(has_delivery_record=True)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_user_has_delivery_record"),
        ("fulfilment", "0003_tiers_declared_not_delivered"),
        ("projects", "0020_addons"),
    ]

    operations = [migrations.RunPython(mark_initiators, migrations.RunPython.noop)]
