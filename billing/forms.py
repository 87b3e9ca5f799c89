"""Forms of billing's pages. They parse and check what a person sent; the services decide."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format

from accounts.forms import MemberImportForm as PeopleImportForm
from accounts.models import Team
from billing import planner
from billing.flex_selectors import FlexProduct
from billing.models import TokenPack
from billing.services.packs import MAX_PACK_TOKENS
from core.money import tokens_text

# --- User Management ------------------------------------------------------------------------------

ALL, LIST = "all", "list"


class FlexScopeForm(forms.Form):
    """What a person (or everybody selected) may spend tokens on: every product, new ones
    included, or the products ticked, picked from the rate sheet in force by name.

    "All products" is a choice of its own rather than "every box ticked": it also covers
    products added to the rate sheet later, which ticking today's boxes does not."""

    scope = forms.ChoiceField(
        label="May spend tokens on",
        choices=[(ALL, "All products, new ones included"), (LIST, "Only the products ticked below")],
        widget=forms.RadioSelect,
        initial=ALL,
    )
    products = forms.MultipleChoiceField(
        label="Products", required=False, widget=forms.CheckboxSelectMultiple(attrs={"class": "product-choice"})
    )

    def __init__(self, *args, products: list[FlexProduct], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flex_products = products
        field = self.fields["products"]
        field.choices = [(p.code, p.name) for p in products]
        field.error_messages["invalid_choice"] = "Unknown product code “%(value)s”: pick products from the rate sheet."

    @classmethod
    def for_assignment(cls, *, products: list[FlexProduct], all_products: bool | None, codes: list[str]):
        """An unbound form showing a current assignment (or "all products" for nobody yet)."""
        initial = {"scope": LIST if all_products is False else ALL, "products": codes if all_products is False else []}
        return cls(initial=initial, products=products)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("scope") == LIST and not data.get("products") and "products" not in self.errors:
            self.add_error("products", "Tick at least one product, or choose “All products”.")
        return data

    @property
    def products_value(self) -> str | list[str]:
        """What ``billing.services.assign_flex`` takes: "all" or the ticked codes."""
        data = self.cleaned_data
        return ALL if data["scope"] == ALL else sorted(data["products"])

    def product_groups(self) -> list[tuple[str, list]]:
        """The product boxes grouped by charge type, in the rate sheet's order."""
        group_of = {p.code: p.charge_type_label for p in self.flex_products}
        groups: dict[str, list] = {}
        for box in self["products"]:
            groups.setdefault(group_of.get(box.data["value"], "Other"), []).append(box)
        return list(groups.items())


class IdListField(forms.Field):
    """Ids sent as repeated fields (``member=3&member=7``)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        try:
            return list(dict.fromkeys(int(v) for v in values))
        except (TypeError, ValueError):
            raise ValidationError("The selection is not valid. Select the users again.") from None


class BulkSelectionForm(forms.Form):
    """Who a bulk change is for: the boxes ticked, or every user matching the list's filter."""

    action = forms.ChoiceField(choices=[("assign", "Assign Flex"), ("remove", "Remove Flex")])
    member = IdListField(required=False)
    all = forms.BooleanField(required=False)


class MemberImportForm(PeopleImportForm):
    """accounts' upload form, with the ``flex`` column explained."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = (
            "Columns: First name, Last name, Email, and optionally Role (Member, Report viewer, Secondary admin) "
            "and Flex (all, product codes separated by semicolons such as autocad;revit, or empty for none). "
            "One person per row; the first row names the columns."
        )


# --- Sales reps: recording a purchase, moving a pack ----------------------------------------------


class PurchaseForm(forms.Form):
    """A pack bought through the reseller. Times are read in the customer's time zone (the
    view activates it); the service checks the contract, the future and the reference."""

    tokens = forms.IntegerField(
        label="Tokens",
        min_value=1,
        max_value=MAX_PACK_TOKENS,
        error_messages={
            "invalid": "Tokens must be a whole number greater than 0.",
            "min_value": "Tokens must be a whole number greater than 0.",
        },
        widget=forms.NumberInput(attrs={"min": 1, "step": 1, "inputmode": "numeric"}),
    )
    reference = forms.CharField(
        label="Order reference", max_length=100, help_text="The reseller's order number; each order is recorded once."
    )
    purchased_at = forms.DateTimeField(
        label="Purchased at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Enter a date and time, such as 2026-06-01 14:30."},
    )
    price = forms.DecimalField(
        label="Price", required=False, min_value=0, max_digits=12, decimal_places=2, help_text="Optional."
    )
    currency = forms.CharField(
        label="Currency",
        required=False,
        max_length=3,
        help_text="Optional; a three-letter code such as EUR.",
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "class": "input-short"}),
    )
    note = forms.CharField(
        label="Note", required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text="Optional."
    )

    def service_kwargs(self) -> dict:
        """What ``billing.services.record_purchase`` (and its preview) take."""
        data = self.cleaned_data
        return {
            "reference": data["reference"],
            "tokens": data["tokens"],
            "purchased_at": data["purchased_at"],
            "price": data["price"],
            "currency": data["currency"] or "",
            "note": data["note"] or "",
        }


class MoveForm(forms.Form):
    """Which pack moves to which team: the customer's active packs, the other customers of the
    same reseller that the rep serves. Anything else (a tampered form) is refused here."""

    pack = forms.ModelChoiceField(
        queryset=TokenPack.objects.none(),
        label="Pack",
        empty_label=None,
        error_messages={"invalid_choice": "Choose one of this customer's active packs; the pack may have just moved."},
    )
    to_team = forms.ModelChoiceField(
        queryset=Team.objects.none(),
        label="Move to",
        empty_label="Choose a team",
    )

    def __init__(self, *args, packs, teams, reseller_name: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pack"].queryset = packs
        self.fields["pack"].label_from_instance = lambda pack: (
            f"{pack.reference}: {tokens_text(pack.remaining)} tokens left, expires "
            f"{date_format(timezone.localtime(pack.expires_at), 'M j, Y')}"
        )
        self.fields["to_team"].queryset = teams
        self.fields["to_team"].error_messages["invalid_choice"] = (
            f"Choose another customer of {reseller_name}: a pack moves only between teams of the same reseller."
        )


def _whole_number(label: str, low: int, high: int, default: int, help_text: str) -> forms.IntegerField:
    """An optional whole number from ``low`` to ``high`` in a short box showing its default."""
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=low,
        max_value=high,
        help_text=help_text,
        widget=forms.NumberInput(
            attrs={"min": low, "max": high, "inputmode": "numeric", "class": "input-short", "placeholder": default}
        ),
    )


class PlanOptionsForm(forms.Form):
    """The purchase planner's what-ifs (``billing.planner.plan_purchases``'s own options),
    a GET form: each left empty keeps the planner's default."""

    lead_days = _whole_number(
        "Buy ahead (days)",
        0,
        90,
        planner.LEAD_DAYS,
        f"Days before the balance would run out; {planner.LEAD_DAYS} unless changed.",
    )
    step = _whole_number(
        "Round to (tokens)", 1, 100_000, planner.STEP, f"Packs are multiples of this; {planner.STEP} unless changed."
    )
    min_pack = _whole_number(
        "Smallest pack (tokens)", 1, 1_000_000, planner.MIN_PACK, f"{planner.MIN_PACK} unless changed."
    )

    def options(self) -> dict:
        """The valid options given (none when the form is unbound or invalid)."""
        if not self.is_bound or not self.is_valid():
            return {}
        return {name: value for name, value in self.cleaned_data.items() if value is not None}
