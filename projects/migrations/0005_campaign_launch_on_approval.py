from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("projects", "0004_default_categories")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="launch_on_approval",
            field=models.BooleanField(
                default=True,
                help_text="Go live as soon as a reviewer approves; otherwise the initiator launches it.",
            ),
        ),
    ]
