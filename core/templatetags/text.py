"""Small text filters for templates: ``{% load text %}``."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def possessive(name: str) -> str:
    """``Acme's``, but ``Initech Architects'``: a name ending in s takes the apostrophe only."""
    name = str(name)
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"
