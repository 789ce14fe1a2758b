"""Create the Reviewers and Finance staff groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.roles import staff_groups_sync


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    staff_groups_sync(group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"))


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
