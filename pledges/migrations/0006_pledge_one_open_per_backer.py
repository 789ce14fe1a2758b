from django.db import migrations, models


class Migration(migrations.Migration):
    """The constraint in a migration of its own, after 0005 flagged the legacy duplicates it leaves out."""

    dependencies = [
        ("pledges", "0005_one_open_pledge_and_changes"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="pledge",
            constraint=models.UniqueConstraint(
                condition=models.Q(("legacy_duplicate", False), ("status__in", ("pending", "held"))),
                fields=("backer", "campaign"),
                name="pledge_one_open_per_backer",
                violation_error_message="You already back this campaign: manage your pledge instead.",
            ),
        ),
    ]
