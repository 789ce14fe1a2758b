"""Create the Reviewers and Finance staff groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# The groups as they were when this migration was written: settlement.0001 later moves the two
# finance permissions from escrow to settlement, keeping every group's grants. Importing today's
# accounts.roles here would name permissions that do not exist yet at this point of a fresh migrate.
_COMMON = [
    "accounts.view_user",
    "accounts.view_auditevent",
    "projects.view_category",
    "projects.view_campaign",
    "projects.view_rewardtier",
    "projects.view_campaignstatuschange",
]
GROUP_PERMISSIONS = {
    "Reviewers": [*_COMMON, "projects.review_campaign", "projects.suspend_campaign"],
    "Finance": [
        *_COMMON,
        "projects.cancel_campaign",
        "pledges.view_pledge",
        "pledges.view_pledgestatuschange",
        "pledges.refund_pledge",
        "escrow.view_ledgeraccount",
        "escrow.view_ledgertransaction",
        "escrow.view_ledgerentry",
        "escrow.verify_ledger",
        "escrow.view_gatewayoperation",
        "escrow.retry_operations",
    ],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model, permission_model = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    for group_name, perms in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.append(permission_model.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_auditevent"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("projects", "0002_alter_campaign_options"),
        ("pledges", "0002_alter_pledge_options"),
        ("escrow", "0003_alter_gatewayoperation_options_and_more"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
