import django.db.models.deletion
from django.db import migrations, models

from crowdfund_site.migration_ops import foreign_key_index_drop


class Migration(migrations.Migration):
    """Fewer index entries per pledge: each one is written twice, at the INSERT and at the hold.

    The campaign's own index is a prefix of ``pledge_campaign_status_id``; the reward's and the
    replaced pledge's become partial, since most pledges have neither.
    """

    dependencies = [
        ("pledges", "0012_pledge_installments"),
        ("projects", "0020_addons"),
    ]

    operations = [
        foreign_key_index_drop(
            app_label="pledges",
            model_name="pledge",
            field="campaign",
            field_after=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="pledges",
                to="projects.campaign",
            ),
        ),
        foreign_key_index_drop(
            app_label="pledges",
            model_name="pledge",
            field="replaces",
            field_after=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="The pledge whose amount this one changes.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="replaced_by",
                to="pledges.pledge",
            ),
        ),
        foreign_key_index_drop(
            app_label="pledges",
            model_name="pledge",
            field="reward",
            field_after=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="pledges",
                to="projects.rewardtier",
            ),
        ),
        migrations.AddIndex(
            model_name="pledge",
            index=models.Index(condition=models.Q(("reward__isnull", False)), fields=["reward"], name="pledge_reward"),
        ),
        migrations.AddIndex(
            model_name="pledge",
            index=models.Index(
                condition=models.Q(("replaces__isnull", False)), fields=["replaces"], name="pledge_replaces"
            ),
        ),
    ]
