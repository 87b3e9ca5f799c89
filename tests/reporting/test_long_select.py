"""The report filters' person menu renders in Python; it must say what Django's Select says."""

from __future__ import annotations

import re

import pytest
from django import forms

from core.widgets import LongSelect

CHOICES = [("", "All users"), ("1", 'Ann <b>&</b> "Co"'), ("2", "Bob"), ("10", "User 10")]


def form_class(widget):
    class PersonForm(forms.Form):
        user = forms.TypedChoiceField(choices=CHOICES, required=False, coerce=int, empty_value=None, widget=widget)

    return PersonForm


def normalised(html: str) -> str:
    """Whitespace between tags dropped; attributes sorted (their order carries no meaning)."""
    html = re.sub(r">\s+<", "><", html.strip())
    return re.sub(r"<(\w+)([^>]*)>", lambda m: f"<{m[1]}{''.join(sorted(m[2].split(' ')))}>", html)


@pytest.mark.parametrize("data", [None, {"user": "2"}, {"user": ""}, {"user": "99"}, {"user": "x"}])
def test_it_renders_what_djangos_select_renders(data):
    ours, django_s = form_class(LongSelect)(data), form_class(forms.Select)(data)
    if data:
        ours.is_valid(), django_s.is_valid()  # the invalid ones get aria-invalid, as Django's do
    assert normalised(str(ours["user"])) == normalised(str(django_s["user"]))
    assert "&lt;b&gt;&amp;&lt;/b&gt; &quot;Co&quot;" in str(ours["user"])  # labels escaped
