"""In headless Chromium: the initiator submits proof, a backer votes, Finance signs off in the admin."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import FinanceFactory, UserFactory
from crowdfund_site.tests.browser import ARTIFACTS, BROWSER_MARKS, PASSWORD, log_in
from escrow.models import GatewayOperation
from escrow.vocabulary_tranches import tranche_payout_key
from pledges.tests.factories import pledge_held
from projects.milestones.models import MilestoneStatus, MilestoneVote
from projects.milestones.services import milestone_votes_close_due
from settlement.tests.milestone_helpers import campaign_with_milestones, succeed

pytestmark = BROWSER_MARKS


@pytest.mark.django_db(transaction=True)
def test_proof_vote_and_sign_off_release_the_second_tranche(live_server, browser):
    call_command("setup_staff_groups", verbosity=0)  # a transactional test may have flushed them
    campaign = campaign_with_milestones([3_000, 7_000])
    backer = UserFactory(username="bella")
    pledge_held(campaign=campaign, backer=backer, amount=10_000)
    campaign = succeed(campaign)
    second = campaign.milestones.get(position=2)
    base, path = live_server.url, campaign.get_absolute_url()

    initiator = browser.new_page()
    log_in(initiator, base, campaign.initiator.username, path)
    initiator.fill(f"#proof-{second.pk}", "The prototype works: photos in the update.")
    initiator.click("button:has-text('Submit proof')")
    initiator.wait_for_selector("text=your backers have seven days to vote")
    initiator.screenshot(path=str(ARTIFACTS / "milestone-proof.png"), full_page=True)

    voter = browser.new_page()
    log_in(voter, base, backer.username, path)
    voter.wait_for_selector("text=The prototype works")
    voter.click(f"#milestone-{second.pk} button[value=yes]")
    voter.wait_for_selector("text=Your vote is recorded.")
    assert list(MilestoneVote.objects.values_list("backer__username", "approve")) == [("bella", True)]

    milestone_votes_close_due(now=timezone.now() + timedelta(days=7, seconds=1))  # the week is over
    finance = browser.new_page()
    staff = FinanceFactory(username="fiona")
    finance.goto(f"{base}/admin/login/")
    finance.fill("#id_username", staff.username)
    finance.fill("#id_password", PASSWORD)
    finance.click("input[type=submit]")
    finance.goto(f"{base}/admin/projects/milestone/?finance=waiting")
    finance.check(f"input[name=_selected_action][value='{second.pk}']")
    finance.select_option("select[name=action]", "sign_off_and_release")
    finance.click("button[name=index]")
    finance.wait_for_selector("text=Released")
    finance.screenshot(path=str(ARTIFACTS / "milestone-signed-off.png"), full_page=True)
    second.refresh_from_db()
    assert second.status == MilestoneStatus.RELEASED
    assert GatewayOperation.objects.filter(idempotency_key=tranche_payout_key(second.pk)).exists()
