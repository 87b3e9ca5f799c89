"""django-tables2 tables of the reports. They only render: rows come from
``reporting.selectors``; the exports write the same tables (``value_*``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import django_tables2 as tables
from django.utils import dateformat
from django.utils.html import format_html

from core.money import fmt, tokens_text

NUM = {"th": {"class": "num"}, "td": {"class": "num"}}


class TokensColumn(tables.Column):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("attrs", NUM)
        super().__init__(*args, **kwargs)

    def render(self, value: Decimal) -> str:
        return tokens_text(value)

    def value(self, value: Decimal) -> str:
        return fmt(value)  # two decimals, as the API writes amounts


class CountColumn(tables.Column):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("attrs", NUM)
        super().__init__(*args, **kwargs)


class DayColumn(tables.Column):
    """A date as "Mar 2, 2026" (exports: ISO). Formatted in Python: django-tables2's
    DateColumn renders a template per cell."""

    def render(self, value: date) -> str:
        return dateformat.format(value, "M j, Y")

    def value(self, value: date | None) -> str:
        return value.isoformat() if value else ""


class ReportTable(tables.Table):
    """A report's table. Its links go to the reader's report pages and keep the page's range
    and filters: ``url(name, *args)`` is ``Report.url`` (a team's or a customer's pages)."""

    def __init__(self, *args, url: Callable[..., str] | None = None, **kwargs) -> None:
        self.url = url
        super().__init__(*args, **kwargs)

    def link(self, name: str, *args) -> str:
        return self.url(name, *args)


class BucketTable(ReportTable):
    """The chart's numbers: one row per day (week, month), a column per product, a total."""

    label = tables.Column(verbose_name="Day", orderable=False)
    total = TokensColumn(verbose_name="Total tokens", orderable=False)

    class Meta:
        attrs = {"class": "table table-compact table-billing"}
        empty_text = "No usage in this range."
        orderable = False

    def __init__(self, data, *, products: dict[str, str], size: str, **kwargs) -> None:
        extra = [
            (code, TokensColumn(verbose_name=name, accessor=f"values__{code}", default=Decimal(0)))
            for code, name in products.items()
        ]
        super().__init__(data, extra_columns=extra, **kwargs)
        self.columns["label"].column.verbose_name = {"day": "Day", "week": "Week", "month": "Month"}[size]
        self.sequence = ["label", *products, "total"]
        self._sequence = self.sequence


class ProductReportTable(ReportTable):
    name = tables.Column(verbose_name="Product")
    tokens = TokensColumn()
    cloud_credits = TokensColumn(verbose_name="Cloud credits")
    charges = CountColumn()
    users = CountColumn()
    denials = CountColumn()
    share = tables.Column(verbose_name="Share of tokens", attrs=NUM)

    class Meta:
        attrs = {"class": "table table-billing"}
        empty_text = "No usage in this range."
        order_by = ("-tokens",)

    def render_name(self, record: dict) -> str:
        return format_html('<a href="{}">{}</a>', self.link("product-detail", record["product"]), record["name"])

    def value_name(self, record: dict) -> str:
        return record["name"]

    def render_share(self, value: Decimal) -> str:
        return f"{value:.1f}%"

    def value_share(self, value: Decimal) -> str:
        return f"{value:.1f}%"


class UserReportTable(ReportTable):
    label = tables.Column(verbose_name="User")
    tokens = TokensColumn()
    products = CountColumn(verbose_name="Products used")
    days = CountColumn(verbose_name="Days used")
    last_used = DayColumn(verbose_name="Last use")

    class Meta:
        attrs = {"class": "table table-billing"}
        empty_text = "Nobody used Flex in this range."
        order_by = ("-tokens",)

    def render_label(self, record: dict) -> str:
        return format_html('<a href="{}">{}</a>', self.link("user-detail", record["user_id"]), record["label"])

    def value_label(self, record: dict) -> str:
        return record["label"]


class WeekGridTable(ReportTable):
    """Days used per week per product: a column per product, 0 to 7 days each."""

    label = tables.Column(verbose_name="Week of", orderable=False)
    total = CountColumn(verbose_name="Product-days", orderable=False)

    class Meta:
        attrs = {"class": "table table-compact table-billing table-grid"}
        empty_text = "No days used in this range."
        orderable = False

    def __init__(self, data, *, products: dict[str, str], **kwargs) -> None:
        extra = [
            (code, CountColumn(verbose_name=name, accessor=f"days__{code}", default=0))
            for code, name in products.items()
        ]
        super().__init__(data, extra_columns=extra, **kwargs)
        self.sequence = ["label", *products, "total"]
        self._sequence = self.sequence


class DenialDayTable(ReportTable):
    day = DayColumn()
    product_name = tables.Column(verbose_name="Product")
    label = tables.Column(verbose_name="User")
    denials = CountColumn(verbose_name="Refused")

    class Meta:
        attrs = {"class": "table table-billing"}
        empty_text = "Nothing was refused in this range."
        order_by = ("-day",)


class DenialReasonTable(ReportTable):
    product_name = tables.Column(verbose_name="Product")
    reason_label = tables.Column(verbose_name="Reason")
    denials = CountColumn(verbose_name="Refused")

    class Meta:
        attrs = {"class": "table table-billing"}
        empty_text = "Nothing was refused in this range."
        order_by = ("-denials",)
