"""The initiator dashboard's chart, drawn on the server as inline SVG (no JavaScript).

``funding_chart`` turns the pledges per day and the funding forecast into coordinates; the
template ``pledges/_funding_chart.svg.html`` draws them. Every value in the SVG is a number
or a formatted amount computed here, never user content.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from crowdfund_site.money import format_amount

WIDTH = 720
HEIGHT = 280
PAD_LEFT = 84
PAD_RIGHT = 16
PAD_TOP = 16
PAD_BOTTOM = 34


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class FundingChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    pledged_points: str  # polyline "x,y x,y ..." of the running total
    cone_polygon: str  # polygon of the forecast band (empty without a forecast)
    median_points: str  # polyline of the forecast median
    goal_y: float
    goal_label: str
    now_x: float | None
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    description: str  # for screen readers


def _end_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def funding_chart(
    *, start: datetime, end: datetime, goal: int, currency: str, per_day: list[tuple[date, int, int]], forecast=None
) -> FundingChart:
    """Return the geometry of the running total from ``start`` to ``end``, the goal and the forecast cone.

    ``per_day`` is (day, pledges, amount) as ``pledges_per_day`` returns it; ``forecast`` a
    ``risk.selectors.Forecast`` or None.
    """
    now = timezone.now()
    if end <= start:
        end = start + timedelta(days=1)
    running, points = 0, [(start, 0)]
    for day, _, amount in per_day:
        running += amount
        points.append((max(min(_end_of_day(day), now, end), start), running))
    if now < end and (len(points) == 1 or points[-1][0] < now):
        points.append((max(now, start), running))
    cone = list(forecast.cone) if forecast is not None and forecast.method != "closed" else []
    top = max([goal, running, *(p.high for p in cone)])
    top = _nice_ceiling(int(top * 1.05) or 1)

    span = (end - start).total_seconds()
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(at: datetime) -> float:
        return round(PAD_LEFT + plot_w * min(max((at - start).total_seconds() / span, 0.0), 1.0), 1)

    def y(amount: int) -> float:
        return round(PAD_TOP + plot_h * (1 - min(amount / top, 1.0)), 1)

    def line(pairs) -> str:
        return " ".join(f"{x(at)},{y(amount)}" for at, amount in pairs)

    cone_polygon = ""
    median_points = ""
    if cone:
        upper = [(p.at, p.high) for p in cone]
        lower = [(p.at, p.low) for p in reversed(cone)]
        cone_polygon = line(upper + lower)
        median_points = line((p.at, p.median) for p in cone)
    x_ticks = tuple(
        Tick(x=x(start + timedelta(seconds=span * i / 4)), y=HEIGHT - PAD_BOTTOM + 18, label=_day_label(start, span, i))
        for i in range(5)
    )
    y_ticks = tuple(
        Tick(x=PAD_LEFT - 8, y=y(top * i // 4), label=format_amount(top * i // 4, currency)) for i in range(5)
    )
    description = gettext("%(pledged)s pledged of a %(goal)s goal") % {
        "pledged": format_amount(running, currency),
        "goal": format_amount(goal, currency),
    }
    if forecast is not None and forecast.method != "closed":
        description = gettext("%(so_far)s; forecast at the deadline %(total)s (between %(low)s and %(high)s)") % {
            "so_far": description,
            "total": format_amount(forecast.predicted_total, currency),
            "low": format_amount(forecast.low, currency),
            "high": format_amount(forecast.high, currency),
        }
    return FundingChart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=PAD_LEFT,
        plot_right=WIDTH - PAD_RIGHT,
        plot_top=PAD_TOP,
        plot_bottom=HEIGHT - PAD_BOTTOM,
        pledged_points=line(points),
        cone_polygon=cone_polygon,
        median_points=median_points,
        goal_y=y(goal),
        goal_label=gettext("Goal %(goal)s") % {"goal": format_amount(goal, currency)},
        now_x=x(now) if start < now < end else None,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        description=description,
    )


def _day_label(start: datetime, span: float, i: int) -> str:
    at = timezone.localtime(start + timedelta(seconds=span * i / 4))
    return date_format(at, "MONTH_DAY_FORMAT")  # in the reader's language: "7 Mar", "3月7日"


def _nice_ceiling(value: int) -> int:
    """Return the smallest 1, 2 or 5 times a power of ten that is >= ``value``."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10
