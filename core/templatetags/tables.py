"""``{% table_cells row %}``: a django-tables2 row's cells, written in Python.

django-tables2's own template writes each cell through a dozen template lookups (the
column's attributes, its localisation), about as long as computing the cell itself; a
report of a year has hundreds of cells. This writes the same ``<td>``s: the column's
``td`` attributes (computed once per column and table unless they depend on the cell),
the cell localised and escaped as ``{{ cell }}`` would be.
"""

from __future__ import annotations

from django import template
from django.template.base import render_value_in_context
from django.utils import formats
from django.utils.html import conditional_escape, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def table_cells(context: template.Context, row) -> SafeString:
    table = row.table
    cache = table.__dict__.setdefault("_td_attrs", {})
    cells = []
    for column, cell in row.items():
        attrs = cache.get(column.name)
        if attrs is None:
            attrs = column.attrs["td"].as_html()
            if not any(callable(value) for value in column.column.attrs.get("td", {}).values()):
                cache[column.name] = attrs
        if column.localize is None:
            text = render_value_in_context(cell, context)
        else:  # {{ cell|localize }} or {{ cell|unlocalize }}
            text = conditional_escape(str(formats.localize(cell, use_l10n=column.localize)))
        cells.append((mark_safe(" " + attrs) if attrs else "", text))  # noqa: S308 (attributes escaped by django-tables2)
    return format_html_join("", "<td{}>{}</td>", cells)
