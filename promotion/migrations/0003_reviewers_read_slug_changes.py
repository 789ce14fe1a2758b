"""Let the Reviewers staff group read the record of web address changes (accounts.roles lists it)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

REVIEWERS = "Reviewers"  # frozen copy of accounts.roles.REVIEWERS


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure this one exists now.
    app_config = apps.get_app_config("promotion")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    group = apps.get_model("auth", "Group").objects.filter(name=REVIEWERS).first()
    if group is not None:
        permission = apps.get_model("auth", "Permission").objects.get(
            content_type__app_label="promotion", codename="view_campaignslugchange"
        )
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=REVIEWERS).first()
    if group is not None:
        group.permissions.remove(
            *apps.get_model("auth", "Permission").objects.filter(
                content_type__app_label="promotion", codename="view_campaignslugchange"
            )
        )


class Migration(migrations.Migration):
    dependencies = [("promotion", "0002_campaign_slug_changes"), ("accounts", "0003_staff_groups")]

    operations = [migrations.RunPython(grant, revoke)]
