"""Form widgets that Django's own render too slowly for long menus."""

from __future__ import annotations

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe


class LongSelect(forms.Select):
    """A ``<select>`` rendered in Python instead of one template per option.

    Django renders every option through the template engine: for a menu of 200 people that
    costs more than the report query it filters (a profile of a person's report page: a
    quarter of the page's time). The markup is the same: the attributes, each option with
    its value and label escaped, the chosen one ``selected``. Flat choices only (no groups).
    """

    def render(self, name: str, value, attrs=None, renderer=None) -> SafeString:
        final = self.build_attrs(self.attrs, {**(attrs or {}), "name": name})
        chosen = set(self.format_value(value))
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (str(option), mark_safe(" selected") if str(option) in chosen else "", label)
                for option, label in self.choices
            ),
        )
        return format_html("<select{}>{}</select>", flatatt(final), options)
