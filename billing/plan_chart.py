"""The purchase planner's chart: the projected balance without and with the plan, as
server-rendered SVG geometry (no script, no inline style: CSS classes colour the lines).
Pure; the page shows the same numbers in a table beside it.

The plan's points are about weekly, plus every day where something happens (a purchase, a
pack losing tokens at its expiry, the balance running out). Between two points the balance
only falls by the burn (``billing.planner``: nothing else happens on the days between), so
each segment is drawn as the model has it: down by the burn to the day before the next
point (flat at zero once empty), then the step of that day (a purchase up, an expiry down).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import pairwise

from core.money import tokens_text

WIDTH, HEIGHT = 720, 220  # the plot
LEFT, TOP, BOTTOM = 64, 10, 26  # room for the tokens axis, above, and the dates below
TICKS = 4  # horizontal grid lines above zero


def _nice_top(value: Decimal) -> Decimal:
    """The axis' top: the value rounded up to 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return Decimal(100)
    magnitude = Decimal(10) ** (len(str(int(value))) - 1)
    for factor in (1, 2, Decimal("2.5"), 5, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover (the loop ends at 10)


def _series(points: list[tuple[date, Decimal]], burn: Decimal) -> list[tuple[float, Decimal]]:
    """(day offset, balance) vertices of one line, from the first point's day."""
    if not points:
        return []
    start = points[0][0]
    out: list[tuple[float, Decimal]] = [(0.0, points[0][1])]
    for (day1, value1), (day2, value2) in pairwise(points):
        x1, x2 = (day1 - start).days, (day2 - start).days
        gap = x2 - 1 - x1  # the days between that only burn
        if gap > 0 and burn > 0:
            reached = value1 - burn * gap
            if reached < 0:
                out.append((x1 + float(value1 / burn), Decimal(0)))
                reached = Decimal(0)
            out.append((float(x2 - 1), reached))
        out.append((float(x2), value2))
    return out


def projection_chart(*, points, proposals, burn: Decimal, today: date) -> dict:
    """The chart of ``PurchasePlan.points`` (``day``, ``without``, ``with_plan``) with a
    marker at each proposal's day (``buy_on``, ``tokens``)."""
    without = _series([(p.day, p.without) for p in points], burn)
    with_plan = _series([(p.day, p.with_plan) for p in points], burn)
    days = max((points[-1].day - points[0].day).days if points else 0, 1)
    top = _nice_top(max((v for _, v in without + with_plan), default=Decimal(0)))

    def x(offset: float) -> float:
        return LEFT + offset / days * (WIDTH - LEFT - 8)

    def y(value: Decimal) -> float:
        return TOP + HEIGHT - float(value / top) * HEIGHT

    def line(vertices: list[tuple[float, Decimal]]) -> str:
        return " ".join(f"{x(o):.1f},{y(v):.1f}" for o, v in vertices)

    by_day = {p.day: p for p in points}
    markers = [
        {
            "x": f"{x((p.buy_on - points[0].day).days):.1f}",
            "y": f"{y(by_day[p.buy_on].with_plan if p.buy_on in by_day else Decimal(0)):.1f}",
            "label": f"Buy {p.tokens:,} tokens on {p.buy_on:%b} {p.buy_on.day}, {p.buy_on.year}",
        }
        for p in proposals
        if points and points[0].day <= p.buy_on <= points[-1].day
    ]
    ticks = [
        {"y": f"{y(value):.1f}", "label": tokens_text(value), "label_y": f"{y(value) + 4:.1f}"}
        for value in (top * k / TICKS for k in range(TICKS + 1))
    ]
    # About six date labels: the first of a month, or the first day when the span is short.
    labels = []
    if points:
        first, last = points[0].day, points[-1].day
        months = (last.year - first.year) * 12 + last.month - first.month
        every = max(1, -(-months // 6))
        if months < 2:
            labels.append({"x": f"{x(0):.1f}", "text": f"{first:%b} {first.day}"})
            labels.append({"x": f"{x(days):.1f}", "text": f"{last:%b} {last.day}"})
        else:
            year, month = first.year, first.month
            k = 0
            while (year, month) <= (last.year, last.month):
                day = date(year, month, 1)
                if day > first and k % every == 0:
                    text = f"{day:%b %Y}" if month == 1 or not labels else f"{day:%b}"
                    labels.append({"x": f"{x((day - first).days):.1f}", "text": text})
                k += 1
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return {
        "width": WIDTH,
        "height": TOP + HEIGHT + BOTTOM,
        "left": LEFT,
        "right": WIDTH - 8,
        "axis_y": f"{TOP + HEIGHT + 0.5:.1f}",
        "label_y": TOP + HEIGHT + 18,
        "without": line(without),
        "with_plan": line(with_plan),
        "markers": markers,
        "ticks": ticks,
        "labels": labels,
        "top": top,
        "has_plan": bool(proposals),
        "today": today,
    }


def projection_rows(plan) -> list[dict]:
    """The chart's numbers, a row a point, with what happens that day in words."""
    bought = {p.buy_on: p for p in plan.proposals}
    lost: dict[date, list] = {}
    for unused in plan.unavoidable:
        lost.setdefault(unused.expires_on, []).append(unused)
    rows = []
    for point in plan.points:
        events = []
        if point.day == plan.today:
            events.append("Today")
        if point.day in bought:
            events.append(f"Buy {bought[point.day].tokens:,} tokens")
        for unused in lost.get(point.day, ()):
            name = f"pack {unused.reference}" if unused.reference else "a pack"
            events.append(f"{tokens_text(unused.tokens)} tokens of {name} expire unused")
        if point.day == plan.runs_out_on:
            events.append("Runs out without the plan")
        if point.day == plan.runs_out_with_plan:
            events.append("Runs out even with the plan")
        if point.day == plan.horizon_end:
            events.append("Plan ends (contract's last day)" if plan.horizon_end != plan.today else "Plan ends")
        rows.append(
            {"day": point.day, "without": point.without, "with_plan": point.with_plan, "event": "; ".join(events)}
        )
    return rows
