"""Give the Reviewers staff group the permissions to see and decide pool applications (accounts.roles lists them)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

REVIEWERS = "Reviewers"  # frozen copy of accounts.roles.REVIEWERS
CODENAMES = ["view_poolapplication", "decide_application"]


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure this one exists now.
    app_config = apps.get_app_config("matching")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    group = apps.get_model("auth", "Group").objects.filter(name=REVIEWERS).first()
    if group is not None:
        group.permissions.add(
            *apps.get_model("auth", "Permission").objects.filter(
                content_type__app_label="matching", codename__in=CODENAMES
            )
        )


def revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=REVIEWERS).first()
    if group is not None:
        group.permissions.remove(
            *apps.get_model("auth", "Permission").objects.filter(
                content_type__app_label="matching", codename__in=CODENAMES
            )
        )


class Migration(migrations.Migration):
    dependencies = [("matching", "0006_pool_applications"), ("accounts", "0003_staff_groups")]

    operations = [migrations.RunPython(grant, revoke)]
