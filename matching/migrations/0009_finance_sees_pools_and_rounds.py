"""Let the Finance staff group see pools and rounds in the admin, where they pay rounds and put up pools for sponsors."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

FINANCE = "Finance"  # frozen copy of accounts.roles.FINANCE
CODENAMES = ["view_pool", "view_round"]


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure this one exists now.
    app_config = apps.get_app_config("matching")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    group = apps.get_model("auth", "Group").objects.filter(name=FINANCE).first()
    if group is not None:
        group.permissions.add(
            *apps.get_model("auth", "Permission").objects.filter(
                content_type__app_label="matching", codename__in=CODENAMES
            )
        )


def revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=FINANCE).first()
    if group is not None:
        group.permissions.remove(
            *apps.get_model("auth", "Permission").objects.filter(
                content_type__app_label="matching", codename__in=CODENAMES
            )
        )


class Migration(migrations.Migration):
    dependencies = [("matching", "0008_pool_logo"), ("accounts", "0003_staff_groups")]

    operations = [migrations.RunPython(grant, revoke)]
