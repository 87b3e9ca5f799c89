"""The reports' filters (django-filter).

- :class:`RollupFilter`: which usage-rollup rows a report reads (a day range, a product, a
  person); :class:`ProductDayFilter`, :class:`DayFilter`, :class:`ProductUserMonthFilter`
  and :class:`UserMonthFilter` the same for the rollups sized to a question (a month range
  for the monthly ones). Every reporting selector reads its rows through them
  (``reporting.selectors``), so the pages, the exports and the API filter alike.
- :class:`ReportFilter`: the range and filters of a report page, carried across the tabs in
  the URL: its form validates and renders them; the view turns the range into days
  (``reporting.ranges.resolve``) and hands them to the selectors.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db import models

from billing.models import DayRollup, ProductDayRollup, ProductUserMonthRollup, UsageRollup, UserMonthRollup
from core.widgets import LongSelect
from reporting.ranges import DEFAULT_RANGE, RANGE_CHOICES

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _rollup_filter(model: type[models.Model], *, period: str) -> type[django_filters.FilterSet]:
    """The filter of one rollup's rows: ``start`` and ``end`` (inclusive) on its ``period``
    column (``day``, or ``month``: then the first days of the first and last month), and
    ``product`` and ``user`` where the rollup has them."""
    fields = {field.name for field in model._meta.get_fields()}
    attrs: dict = {
        "start": django_filters.DateFilter(field_name=period, lookup_expr="gte"),
        "end": django_filters.DateFilter(field_name=period, lookup_expr="lte"),
        "Meta": type("Meta", (), {"model": model, "fields": []}),
        "__module__": __name__,
    }
    if "product" in fields:
        attrs["product"] = django_filters.CharFilter(field_name="product")
    if "user" in fields:
        attrs["user"] = django_filters.NumberFilter(field_name="user_id")
    return type(f"{model.__name__}Filter", (django_filters.FilterSet,), attrs)


RollupFilter = _rollup_filter(UsageRollup, period="day")
ProductDayFilter = _rollup_filter(ProductDayRollup, period="day")
DayFilter = _rollup_filter(DayRollup, period="day")
ProductUserMonthFilter = _rollup_filter(ProductUserMonthRollup, period="month")
UserMonthFilter = _rollup_filter(UserMonthRollup, period="month")


class ReportForm(forms.Form):
    """The page filter's form: a custom range needs a first or a last day, in order."""

    def clean(self) -> dict:
        data = super().clean()
        if data.get("range") == "custom":
            if not data.get("start") and not data.get("end"):
                self.add_error("start", "Give a first day, a last day or both.")
            elif data.get("start") and data.get("end") and data["start"] > data["end"]:
                self.add_error("end", "The last day lies before the first.")
        return data


class ReportFilter(django_filters.FilterSet):
    # The range is turned into days by the view (it depends on the team's today and
    # contract); the rows are filtered by the selectors, through RollupFilter.
    range = django_filters.ChoiceFilter(
        choices=RANGE_CHOICES, empty_label=None, initial=DEFAULT_RANGE, label="Range", method="by_selectors"
    )
    start = django_filters.DateFilter(label="From", widget=DATE, method="by_selectors")
    end = django_filters.DateFilter(label="To", widget=DATE, method="by_selectors")
    product = django_filters.ChoiceFilter(label="Product", empty_label="All products", method="by_selectors")
    user = django_filters.TypedChoiceFilter(
        label="User", coerce=int, empty_value=None, widget=LongSelect, method="by_selectors"
    )

    class Meta:
        model = UsageRollup
        fields: list[str] = []
        form = ReportForm

    def __init__(self, data=None, *, products: dict[str, str], people: list[dict] | None) -> None:
        super().__init__(data, queryset=UsageRollup.objects.none())
        self.filters["product"].extra["choices"] = list(products.items())
        if people is None:
            del self.filters["user"]  # Standard plan, or a reseller's rep: no person filter at all
        else:
            people_choices = [(str(p["user_id"]), p["label"]) for p in people]
            self.filters["user"].extra["choices"] = [("", "All users"), *people_choices]

    def by_selectors(self, queryset, name, value):
        return queryset
