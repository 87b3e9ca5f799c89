"""django-tables2 asks a render function's signature once per function, not once per cell."""

from __future__ import annotations

from inspect import signature as inspect_signature

import django_tables2 as tables
from django.test import RequestFactory
from django_tables2 import utils

from core.tables import remember_signatures


class Cells(tables.Table):
    name = tables.Column()
    size = tables.Column()

    def render_size(self, value, record):
        return f"{value} of {record['name']}"


def as_django_tables2_reads_it(fn) -> tuple:
    """(arguments, the ** catch-all): what ``django_tables2.utils.signature`` answers."""
    args, keywords = [], None
    for arg in inspect_signature(fn).parameters.values():
        if arg.kind == arg.VAR_KEYWORD:
            keywords = arg.name
        elif arg.kind != arg.VAR_POSITIONAL:
            args.append(arg.name)
    return tuple(args), keywords


def test_the_project_has_replaced_django_tables2s_signature():
    # If an upgrade renamed the function, the replacement would do nothing: this says so.
    assert getattr(utils.signature, "remembers", False)


def test_a_render_methods_signature_is_read_once_for_every_cell_and_table(monkeypatch):
    asked = []

    def counting(fn):
        asked.append(fn)
        return as_django_tables2_reads_it(fn)

    monkeypatch.setattr(utils, "signature", counting)
    remember_signatures()  # over the counting one (the cache belongs to each replacement)
    rows = [{"name": f"pack {n}", "size": n} for n in range(50)]
    request = RequestFactory().get("/")
    cells = []
    for table in (Cells(rows), Cells(rows)):
        tables.RequestConfig(request).configure(table)
        cells += [cell for row in table.rows for _, cell in row.items()]
    assert len(cells) == 200
    assert "7 of pack 7" in cells and "pack 7" in cells
    # 200 cells of two tables: render_size inspected once, the plain column's render once.
    assert len(asked) == 2, asked
    # The answers are the ones django-tables2 would give: a method's without self.
    assert utils.signature(Cells(rows).render_size) == (("value", "record"), None)
    assert utils.signature(tables.Column().render) == (("value",), None)
