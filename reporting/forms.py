"""The range and filters of every report: one GET form, carried across the tabs in the URL."""

from __future__ import annotations

from django import forms

from core.widgets import LongSelect
from reporting.ranges import DEFAULT_RANGE, RANGE_CHOICES


class ReportForm(forms.Form):
    range = forms.ChoiceField(choices=RANGE_CHOICES, required=False, initial=DEFAULT_RANGE, label="Range")
    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    product = forms.ChoiceField(required=False, label="Product")
    user = forms.TypedChoiceField(required=False, label="User", coerce=int, empty_value=None, widget=LongSelect)

    def __init__(self, *args, products: dict[str, str], people: list[dict] | None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product"].choices = [("", "All products"), *products.items()]
        if people is None:
            # Standard plan (or a page without people): no user filter at all.
            del self.fields["user"]
        else:
            self.fields["user"].choices = [("", "All users")] + [(str(p["user_id"]), p["label"]) for p in people]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("range") == "custom":
            if not data.get("start") and not data.get("end"):
                self.add_error("start", "Give a first day, a last day or both.")
            elif data.get("start") and data.get("end") and data["start"] > data["end"]:
                self.add_error("end", "The last day lies before the first.")
        return data
