"""The referral report's chart, drawn on the server as inline SVG (as the dashboard's is).

One row per source: a bar of clicks and, under it, a bar of pledges, each scaled to the
largest of its kind. Every value in the SVG is a number or a label computed here; names are
escaped by the template.
"""

from dataclasses import dataclass

from django.utils.translation import gettext

WIDTH = 720
LABEL_WIDTH = 180
ROW_HEIGHT = 44
BAR_HEIGHT = 14
PAD = 12
MAX_ROWS = 12


@dataclass(frozen=True)
class Bar:
    label: str
    y: float
    clicks_width: float
    pledges_width: float
    clicks: int
    pledges: int


@dataclass(frozen=True)
class ReferralChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: tuple[Bar, ...]
    description: str


def referral_chart(*, report) -> ReferralChart | None:
    """Return the bars of the busiest sources (at most MAX_ROWS), or None if nothing was recorded."""
    rows = [row for row in report.rows if row.clicks or row.pledges]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (-r.clicks, -r.pledges))[:MAX_ROWS]
    room = WIDTH - LABEL_WIDTH - 2 * PAD - 60
    most_clicks = max(row.clicks for row in rows) or 1
    most_pledges = max(row.pledges for row in rows) or 1
    bars = []
    for index, row in enumerate(rows):
        label = row.name if row.kind == "tag" else (row.name if row.kind == "site" else gettext("Direct"))
        bars.append(
            Bar(
                label=label[:28],
                y=PAD + index * ROW_HEIGHT,
                clicks_width=round(room * row.clicks / most_clicks, 1),
                pledges_width=round(room * row.pledges / most_pledges, 1),
                clicks=row.clicks,
                pledges=row.pledges,
            )
        )
    description = "; ".join(
        gettext("%(source)s: %(clicks)d clicks, %(pledges)d pledges")
        % {"source": bar.label, "clicks": bar.clicks, "pledges": bar.pledges}
        for bar in bars
    )
    return ReferralChart(
        width=WIDTH,
        height=2 * PAD + len(bars) * ROW_HEIGHT,
        label_width=LABEL_WIDTH,
        bar_height=BAR_HEIGHT,
        bars=tuple(bars),
        description=description,
    )
