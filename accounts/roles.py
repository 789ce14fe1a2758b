"""Staff roles for the operators' console, on least privilege.

Reviewers decide on campaigns; finance looks after money. Neither can do the other's job;
superusers can do everything. Kept in one place for the migration that creates the groups and
for ``manage.py setup_staff_groups``, which re-applies them.
"""

REVIEWERS = "Reviewers"
FINANCE = "Finance"

_COMMON = [
    "accounts.view_user",
    "accounts.view_auditevent",
    "projects.view_category",
    "projects.view_campaign",
    "projects.view_rewardtier",
    "projects.view_campaignstatuschange",
    "projects.view_milestone",
]

GROUP_PERMISSIONS: dict[str, list[str]] = {
    REVIEWERS: [
        *_COMMON,
        "projects.review_campaign",
        "projects.suspend_campaign",
        # Reviewers may rename a campaign's web address; they read every rename's record.
        "promotion.view_campaignslugchange",
    ],
    FINANCE: [
        *_COMMON,
        "projects.cancel_campaign",
        "pledges.view_pledge",
        "pledges.view_pledgestatuschange",
        "pledges.refund_pledge",
        "escrow.view_ledgeraccount",
        "escrow.view_ledgertransaction",
        "escrow.view_ledgerentry",
        "escrow.view_gatewayoperation",
        "settlement.verify_ledger",
        "settlement.retry_operations",
        "projects.sign_off_milestone",
        "projects.declare_milestone_failure",
        "fulfilment.view_deliveryreport",
        "fulfilment.decide_delivery_report",
        "matching.pay_round",
    ],
}


def staff_groups_sync(*, group_model, permission_model) -> None:
    """Create the staff groups and give each exactly its permissions."""
    for group_name, perms in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.append(permission_model.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
