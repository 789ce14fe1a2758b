"""Moving settlement out of escrow kept every staff permission: the groups can do what they could."""

import importlib
import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.roles import FINANCE, REVIEWERS

# What each group could do before settlement became its own app, by the permissions' names.
_COMMON = [
    "Can view audit event",
    "Can view campaign",
    "Can view campaign status change",
    "Can view category",
    "Can view reward tier",
    "Can view user",
]
BEFORE = {
    REVIEWERS: sorted(
        [*_COMMON, "Can approve, reject or request changes to campaigns", "Can suspend and reinstate campaigns"]
    ),
    FINANCE: sorted(
        [
            *_COMMON,
            "Can cancel campaigns (refunds every backer)",
            "Can refund held pledges",
            "Can retry stuck settlements and unconfirmed refunds",
            "Can run the ledger verification",
            "Can view gateway operation",
            "Can view ledger account",
            "Can view ledger entry",
            "Can view ledger transaction",
            "Can view pledge",
            "Can view pledge status change",
        ]
    ),
}
# Staged release (milestones) came later: both groups see plans, Finance signs tranches off and
# may declare failure (``setup_staff_groups`` gives existing groups these). Then delivery:
# Finance decides non-delivery reports (an upheld one refunds money); and matching, whose
# rounds Finance pays (matching's 0003 migration gives an existing Finance group that). Then web
# address changes, which Reviewers read (promotion's 0003 migration gives an existing group that).
NOW = {
    REVIEWERS: sorted([*BEFORE[REVIEWERS], "Can view milestone", "Can view campaign slug change"]),
    FINANCE: sorted(
        [
            *BEFORE[FINANCE],
            "Can declare a campaign's milestones failed (refunds the rest)",
            "Can pay matching rounds",
            "Can sign off or reject a milestone backers approved",
            "Can view milestone",
            "Can uphold or dismiss non-delivery reports",
            "Can view delivery report",
        ]
    ),
}


def group_permission_names(name: str) -> list[str]:
    return sorted(Group.objects.get(name=name).permissions.values_list("name", flat=True))


@pytest.mark.django_db
def test_the_staff_groups_as_defined_now_have_the_same_permissions():
    call_command("setup_staff_groups", stdout=io.StringIO())
    assert {name: group_permission_names(name) for name in NOW} == NOW


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    return executor


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_permissions_with_every_group_that_had_them():
    before = [("escrow", "0005_suspended_past_deadline"), ("settlement", None)]
    executor = _migrate(before)
    # The staff groups as the accounts migration made them, before the move.
    staff_groups = importlib.import_module("accounts.migrations.0003_staff_groups")
    with connection.schema_editor() as editor:
        nodes = [n for n in executor.loader.graph.leaf_nodes() if n[0] not in ("escrow", "settlement")]
        state = executor.loader.project_state([*nodes, before[0]])
        staff_groups.create_groups(state.apps, editor)
    # An operator's own group, made before the move, with escrow's finance and operations permissions.
    escrow_codenames = ["retry_operations", "verify_ledger", "view_stucksettlement", "view_unconfirmedrefund"]
    escrow_permissions = Permission.objects.filter(content_type__app_label="escrow", codename__in=escrow_codenames)
    assert escrow_permissions.count() == len(escrow_codenames)
    night_shift = Group.objects.create(name="Night shift")
    night_shift.permissions.set(escrow_permissions)
    names = sorted(escrow_permissions.values_list("name", flat=True))

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert group_permission_names("Night shift") == names
    assert set(night_shift.permissions.values_list("content_type__app_label", flat=True)) == {"settlement"}
    assert {name: group_permission_names(name) for name in BEFORE} == BEFORE
    finance = Group.objects.get(name=FINANCE).permissions
    assert {"retry_operations", "verify_ledger"} <= set(
        finance.filter(content_type__app_label="settlement").values_list("codename", flat=True)
    )
    assert not Permission.objects.filter(content_type__app_label="escrow", codename__in=escrow_codenames).exists()
