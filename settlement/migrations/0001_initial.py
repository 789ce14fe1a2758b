"""The settlement app takes over the operations lists and the finance permissions from escrow.

The proxies' content types are renamed (escrow -> settlement) and the two finance permissions
are moved onto settlement's content type, row for row, so every group and user that had them
keeps them; nothing in the database changes but those rows.
"""

from django.db import migrations

PROXIES = ["stucksettlement", "unconfirmedrefund", "suspendedpastdeadline"]
# codename -> the escrow model that used to carry it
MOVED_PERMISSIONS = {"retry_operations": "gatewayoperation", "verify_ledger": "ledgertransaction"}
CARRIER = "stucksettlement"


def _move_content_type(content_type_model, permission_model, *, model: str, source: str, target: str) -> None:
    old = content_type_model.objects.filter(app_label=source, model=model).first()
    if old is None:
        return
    new = content_type_model.objects.filter(app_label=target, model=model).first()
    if new is None:
        old.app_label = target
        old.save(update_fields=["app_label"])
        return
    for permission in permission_model.objects.filter(content_type=old):
        _move_permission(permission_model, permission=permission, content_type=new)
    old.delete()


def _move_permission(permission_model, *, permission, content_type) -> None:
    existing = permission_model.objects.filter(content_type=content_type, codename=permission.codename).first()
    if existing is None:
        permission.content_type = content_type
        permission.save(update_fields=["content_type"])
        return
    existing.group_set.add(*permission.group_set.all())
    existing.user_set.add(*permission.user_set.all())
    permission.delete()


def _move(apps, *, source: str, target: str, forwards: bool) -> None:
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    if forwards:
        _move_content_types(content_type_model, permission_model, source=source, target=target)
    for codename, escrow_model in MOVED_PERMISSIONS.items():
        if forwards:
            old_app, old_model, new_app, new_model = "escrow", escrow_model, "settlement", CARRIER
        else:
            old_app, old_model, new_app, new_model = "settlement", CARRIER, "escrow", escrow_model
        permission = permission_model.objects.filter(
            codename=codename, content_type__app_label=old_app, content_type__model=old_model
        ).first()
        if permission is None:
            continue
        content_type, _ = content_type_model.objects.get_or_create(app_label=new_app, model=new_model)
        _move_permission(permission_model, permission=permission, content_type=content_type)
    if not forwards:  # the two permissions first: they ride on one of these content types
        _move_content_types(content_type_model, permission_model, source=source, target=target)


def _move_content_types(content_type_model, permission_model, *, source: str, target: str) -> None:
    for model in PROXIES:
        _move_content_type(content_type_model, permission_model, model=model, source=source, target=target)


def forwards(apps, schema_editor):
    _move(apps, source="escrow", target="settlement", forwards=True)


def backwards(apps, schema_editor):
    _move(apps, source="settlement", target="escrow", forwards=False)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0003_staff_groups"),
        ("escrow", "0005_suspended_past_deadline"),
        ("pledges", "0003_pledge_replaces"),
        ("projects", "0008_campaign_status_launched_index"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.CreateModel(
            name="StuckSettlement",
            fields=[],
            options={
                "verbose_name": "settlement in progress",
                "verbose_name_plural": "settlements in progress",
                "permissions": [
                    ("retry_operations", "Can retry stuck settlements and unconfirmed refunds"),
                    ("verify_ledger", "Can run the ledger verification"),
                ],
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("projects.campaign",),
        ),
        migrations.CreateModel(
            name="UnconfirmedRefund",
            fields=[],
            options={
                "verbose_name": "refund not confirmed by the gateway",
                "verbose_name_plural": "refunds not confirmed by the gateway",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("pledges.pledge",),
        ),
        migrations.CreateModel(
            name="SuspendedPastDeadline",
            fields=[],
            options={
                "verbose_name": "suspended campaign past its deadline",
                "verbose_name_plural": "suspended past deadline",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("projects.campaign",),
        ),
    ]
