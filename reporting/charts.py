"""Server-rendered SVG charts (no script, no inline style: CSS classes colour the series).
Pure geometry over selector rows; every chart is drawn beside a table of the same numbers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.utils.html import format_html_join

from core.money import tokens_text

WIDTH, HEIGHT, TOP = 720, 180, 8  # the plot; labels go below it
SERIES = 8  # colours in portal.css (.series-0 ... .series-7); more products share the last


@dataclass
class Bucket:
    start: date
    label: str
    short: str = ""
    values: dict[str, Decimal] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum(self.values.values(), Decimal(0))


def bucket_size(start: date, end: date) -> str:
    """Days up to about six weeks (the past 30 days, a month), weeks up to about six months
    (the last 3 and 6 months), months beyond (9 and 12 months, the contract year): at most
    about 45 bars, and a year in its twelve months."""
    span = (end - start).days + 1
    if span <= 45:
        return "day"
    if span <= 190:
        return "week"
    return "month"


def _bucket_start(day: date, size: str) -> date:
    if size == "week":
        return day - timedelta(days=day.weekday())
    if size == "month":
        return day.replace(day=1)
    return day


def _next(day: date, size: str) -> date:
    if size == "week":
        return day + timedelta(days=7)
    if size == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=1)


def _label(day: date, size: str) -> str:
    if size == "month":
        return f"{day:%b %Y}"
    if size == "week":
        return f"Week of {day:%b %-d, %Y}"
    return f"{day:%b %-d, %Y}"


def buckets(
    rows: list[dict], *, start: date | None, end: date | None, key: str = "sum_tokens"
) -> tuple[str, list[Bucket]]:
    """Rows of (day, product, amount) into consecutive buckets from start to end (empty
    ones included, so the chart's x axis is time)."""
    days = [row["day"] for row in rows]
    if start is None:
        start = min(days) if days else end
    if end is None:
        end = max(days) if days else start
    if start is None or end is None:
        return "day", []
    size = bucket_size(start, end)
    out: dict[date, Bucket] = {}
    cursor = _bucket_start(start, size)
    while cursor <= end:
        out[cursor] = Bucket(cursor, _label(cursor, size), f"{cursor:%b %y}" if size == "month" else f"{cursor:%b %-d}")
        cursor = _next(cursor, size)
    for row in rows:
        bucket = out.get(_bucket_start(row["day"], size))
        if bucket is not None and row[key]:
            bucket.values[row["product"]] = bucket.values.get(row["product"], Decimal(0)) + row[key]
    return size, list(out.values())


def stacked_bars(series: list[Bucket], products: list[str], names: dict[str, str] | None = None) -> dict:
    """Rectangles of a chart stacked by product, in ``products`` order (bottom first), with
    ``names`` in their tooltips. ``marks`` and ``label_marks`` are the SVG elements, written
    here (escaped) rather than by template loops: a year's chart has hundreds of them."""
    names = names or {}
    top = max((b.total for b in series), default=Decimal(0))
    n = max(len(series), 1)
    step = WIDTH / n
    width = min(max(step * 0.8, 1), 48)  # a lone bar stays a bar, not a block
    colour = {code: f"series-{min(i, SERIES - 1)}" for i, code in enumerate(products)}
    bars: list[dict] = []
    labels: list[dict] = []
    every = max(1, n // 8)
    for i, bucket in enumerate(series):
        x = i * step + (step - width) / 2
        base = Decimal(HEIGHT + TOP)
        stacks = []
        for code in products:
            value = bucket.values.get(code)
            if not value:
                continue
            height = value / top * HEIGHT if top else Decimal(0)
            base -= height
            stacks.append(
                {
                    "product": code,
                    "name": names.get(code, code),
                    "value": value,
                    "y": f"{base:.1f}",
                    "height": f"{height:.1f}",
                    "css": colour[code],
                }
            )
        bars.append({"x": f"{x:.1f}", "width": f"{width:.1f}", "bucket": bucket, "stacks": stacks})
        if i % every == 0:
            # Short labels, kept inside the plot so the first and last are not cut off.
            centre = min(max(x + width / 2, 28), WIDTH - 28)
            labels.append({"x": f"{centre:.1f}", "text": bucket.short})
    marks = format_html_join(
        "",
        '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}, {}: {}</title></rect>',
        (
            (*(stack["css"], bar["x"], stack["y"], bar["width"], stack["height"]), bar["bucket"].label, *tip)
            for bar in bars
            for stack in bar["stacks"]
            for tip in [(stack["name"], tokens_text(stack["value"]))]
        ),
    )
    label_marks = format_html_join(
        "",
        '<text class="bar-label" x="{}" y="{}" text-anchor="middle">{}</text>',
        ((label["x"], HEIGHT + TOP + 18, label["text"]) for label in labels),
    )
    return {
        "bars": bars,
        "marks": marks,
        "label_marks": label_marks,
        "labels": labels,
        "top": top,
        "colours": colour,
        "width": WIDTH,
        "height": HEIGHT + TOP + 28,
        "axis_y": f"{HEIGHT + TOP + 0.5:.1f}",
        "label_y": HEIGHT + TOP + 18,
    }


def by_product(rows: list[dict]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[row["product"]] += row["sum_tokens"]
    return totals
