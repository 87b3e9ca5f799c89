"""Forms of billing's pages. They parse and check what a person sent; the services decide."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from accounts.forms import MemberImportForm as PeopleImportForm
from billing.flex_selectors import FlexProduct

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
