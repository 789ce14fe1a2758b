"""The bulk helper behind the settlement crash test and benchmark makes pledges settlement accepts."""

import pytest

from escrow.models import GatewayOperation, OperationKind
from pledges.models import Pledge, PledgeStatus
from pledges.testing import held_pledges_create_bulk
from projects.models import CampaignStatus
from projects.tests.factories import LiveCampaignFactory
from settlement.services import campaigns_close_due, settlement_run
from settlement.verification import ledger_verify

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("goal", "settled", "final"),
    [(1, PledgeStatus.RELEASED, CampaignStatus.SUCCEEDED), (10**9, PledgeStatus.REFUNDED, CampaignStatus.FAILED)],
    ids=["release", "refund"],
)
def test_bulk_held_pledges_are_indistinguishable_from_real_ones_for_settlement(goal, settled, final):
    campaign = LiveCampaignFactory(goal=goal)
    total = held_pledges_create_bulk(campaign=campaign, count=130, backers=40, chunk_size=50)

    campaign.refresh_from_db()
    assert campaign.pledged_amount == total == sum(Pledge.objects.values_list("amount", flat=True))
    assert campaign.backer_count == 40
    assert Pledge.objects.filter(campaign=campaign, status=PledgeStatus.HELD).count() == 130
    for pledge in Pledge.objects.all():
        charge = GatewayOperation.objects.get(idempotency_key=f"charge:pledge:{pledge.pk}", kind=OperationKind.CHARGE)
        assert pledge.payment_reference == charge.reference
        assert charge.amount == pledge.amount
    assert ledger_verify() == []

    campaigns_close_due(now=campaign.deadline, enqueue_settlement=False)
    settlement_run(campaign_id=campaign.pk, batch_size=25)

    campaign.refresh_from_db()
    assert campaign.status == final
    assert Pledge.objects.filter(status=settled).count() == 130
    assert ledger_verify() == []
