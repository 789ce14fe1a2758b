from django.db import migrations

SPONSORS_GROUP = "Sponsors"  # frozen copy of matching.models.SPONSORS_GROUP


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=SPONSORS_GROUP)


class Migration(migrations.Migration):
    dependencies = [("matching", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
