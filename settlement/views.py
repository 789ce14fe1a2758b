"""Where the money is: a campaign's public money page and the CSV of its ledger transactions.

Anyone who may see the campaign (``campaign_visible_get``) may see where its money is; anyone
else gets a 404, as for the campaign page itself.
"""

import csv
from decimal import Decimal

from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from crowdfund_site.money import currency_exponent
from projects.models import CampaignStatus
from projects.selectors import campaign_visible_get

from .money import campaign_ledger_lines, campaign_money
from .selectors import late_release_summary

CSV_HEADER = ["transaction", "created_at", "kind", "reference", "account", "amount", "currency", "sealed_in_checkpoint"]


def _campaign_or_404(request, slug: str):
    campaign = campaign_visible_get(user=request.user, slug=slug)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


@require_GET
def campaign_money_view(request, slug: str):
    """Raised, released (per tranche, with dates), held, refunded, fees, matched money and the latest seal."""
    campaign = _campaign_or_404(request, slug)
    # Late pledges come only after success: no query for them before.
    late = late_release_summary(campaign_id=campaign.pk) if campaign.status == CampaignStatus.SUCCEEDED else None
    context = {"campaign": campaign, "money": campaign_money(campaign=campaign), "late": late}
    return render(request, "settlement/campaign_money.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
def campaign_ledger_csv(request, slug: str):
    """Every entry on the campaign's ledger accounts as CSV, streamed (amounts as decimal text)."""
    campaign = _campaign_or_404(request, slug)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_HEADER)
        # Every value is the platform's own (ids, kinds, vocabulary codes, amounts): nothing a
        # spreadsheet could run as a formula but a negative amount, which it reads as a number.
        for line in campaign_ledger_lines(campaign=campaign):
            yield writer.writerow(
                [
                    line.transaction_id,
                    line.created_at.isoformat(),
                    line.kind,
                    line.reference,
                    line.account,
                    f"{Decimal(line.amount).scaleb(-currency_exponent(line.currency)):f}",
                    line.currency,
                    line.checkpoint or "",
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="ledger-{campaign.slug}.csv"'
    return response
