"""CSV and XLSX exports: exactly what the report shows (rows, columns, order, a totals row),
a file name with team, report and range, formula cells neutralised; the files are opened."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from decimal import Decimal
from xml.etree import ElementTree

import pytest
from django.urls import reverse

from accounts.models import User
from reporting.exports import neutralise

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def _url(personas, name: str, fmt: str, query: str = "?range=all") -> str:
    return reverse("reporting:export", args=[personas.team.slug, name, fmt]) + query


def read_csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def read_xlsx(response) -> list[list[str]]:
    """The first sheet's cells as text (inline or shared strings, and numbers)."""
    return read_xlsx_file(b"".join(response.streaming_content))


def read_xlsx_file(content: bytes) -> list[list[str]]:
    """An XLSX file's first sheet as rows of text."""
    book = zipfile.ZipFile(io.BytesIO(content))
    shared = []
    if "xl/sharedStrings.xml" in book.namelist():
        root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
        shared = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")) for si in root.findall("m:si", NS)]
    sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iter(f"{{{NS['m']}}}row"):
        cells: dict[int, str] = {}
        for cell in row.findall("m:c", NS):
            column = re.match(r"[A-Z]+", cell.get("r")).group()
            index = sum((ord(ch) - 64) * 26**i for i, ch in enumerate(reversed(column))) - 1
            if cell.get("t") == "inlineStr":
                cells[index] = "".join(t.text or "" for t in cell.iter(f"{{{NS['m']}}}t"))
            elif cell.get("t") == "s":
                cells[index] = shared[int(cell.find("m:v", NS).text)]
            else:
                value = cell.find("m:v", NS).text
                cells[index] = str(Decimal(value).normalize()) if "." in value else value
        rows.append([cells.get(i, "") for i in range(max(cells) + 1 if cells else 0)])
    return rows


def test_by_product_csv_is_the_table_with_a_totals_row(admin_client, personas, premium_usage):
    response = admin_client.get(_url(personas, "products", "csv"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="own-team_products_all-dates.csv"'
    rows = read_csv(response)
    assert rows[0] == ["Product", "Tokens", "Cloud credits", "Charges", "Users", "Denials", "Share of tokens"]
    page = admin_client.get(reverse("reporting:by-product", args=[personas.team.slug]) + "?range=all")
    assert [r[0] for r in rows[1:-1]] == [row.record["name"] for row in page.context["table"].rows]
    assert rows[-1][0] == "Total"
    assert Decimal(rows[-1][1]) == sum(Decimal(r[1]) for r in rows[1:-1]) == Decimal("27")
    assert rows[-1][4] == "2"


def test_the_export_follows_the_pages_sort_and_filters(admin_client, personas, premium_usage):
    rows = read_csv(admin_client.get(_url(personas, "products", "csv", "?range=all&sort=tokens")))
    assert [r[1] for r in rows[1:-1]] == sorted((r[1] for r in rows[1:-1]), key=Decimal)
    rows = read_csv(admin_client.get(_url(personas, "products", "csv", "?range=all&product=revit")))
    assert [r[0] for r in rows[1:]] == ["Revit", "Total"]


def test_summary_xlsx_opens_and_totals_agree(admin_client, personas, premium_usage):
    response = admin_client.get(_url(personas, "summary", "xlsx"))
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('filename="own-team_summary_all-dates.xlsx"')
    rows = read_xlsx(response)
    assert rows[0][0] == "Day" and rows[0][-1] == "Total tokens"
    assert rows[-1][0] == "Total" and Decimal(rows[-1][-1]) == Decimal("27")
    assert sum(Decimal(r[-1]) for r in rows[1:-1]) == Decimal("27")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_by_user_export_on_premium_and_its_totals(admin_client, personas, premium_usage, fmt):
    response = admin_client.get(_url(personas, "users", fmt))
    rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    assert rows[0][:2] == ["User", "Tokens"]
    # Everybody with usage, a person only refused included (0 tokens).
    assert {r[0] for r in rows[1:-1]} == {"Mia Member", "Val Viewer", "Sid Secondary"}
    assert Decimal(rows[-1][1]) == Decimal("27")


def test_by_user_export_on_standard_is_an_explaining_403(admin_client, personas, standard_usage):
    response = admin_client.get(_url(personas, "users", "csv"))
    assert response.status_code == 403
    assert "By User is part of the Premium plan" in response.content.decode()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_denials_export_names_nobody_on_standard(admin_client, personas, standard_usage, fmt):
    response = admin_client.get(_url(personas, "denials", fmt))
    rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    assert rows[0] == ["Day", "Product", "Refused"]
    assert rows[-1] == ["Total", "", "1"]
    assert personas.secondary_admin.email not in str(rows)


def test_a_file_name_says_the_range(admin_client, personas, premium_usage):
    response = admin_client.get(_url(personas, "products", "csv", "?range=custom&start=2026-01-01&end=2026-03-31"))
    assert response["Content-Disposition"] == 'attachment; filename="own-team_products_2026-01-01_2026-03-31.csv"'


@pytest.mark.parametrize("value", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x"])
def test_formula_cells_are_neutralised(value):
    assert neutralise(value) == f"'{value}"
    assert neutralise("Revit") == "Revit"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_name_that_looks_like_a_formula_is_exported_as_text(admin_client, personas, premium_usage, fmt):
    User.objects.filter(pk=personas.member.pk).update(first_name="=HYPERLINK(1)", last_name="")
    response = admin_client.get(_url(personas, "users", fmt))
    rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    assert "'=HYPERLINK(1)" in [r[0] for r in rows]
    assert "=HYPERLINK(1)" not in [r[0] for r in rows]


def test_an_unknown_export_is_404(admin_client, personas):
    assert admin_client.get(_url(personas, "ledger", "csv")).status_code == 404
    assert admin_client.get(_url(personas, "products", "pdf")).status_code == 404


def test_a_products_drill_down_exports_its_days_filtered_to_the_product(admin_client, personas, premium_usage):
    page = admin_client.get(reverse("reporting:product-detail", args=[personas.team.slug, "revit"]) + "?range=all")
    assert page.context["export_query"] == "?range=all&product=revit"
    rows = read_csv(admin_client.get(_url(personas, "summary", "csv", page.context["export_query"])))
    assert rows[0] == ["Day", "Revit", "Total tokens"]
    assert rows[-1] == ["Total", "10.00", "10.00"]
    assert Decimal(rows[-1][-1]) == page.context["totals"]["tokens"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_persons_days_used_grid_exports_with_totals(admin_client, personas, premium_usage, fmt):
    page = admin_client.get(
        reverse("reporting:user-detail", args=[personas.team.slug, personas.member.pk]) + "?range=all"
    )
    response = admin_client.get(_url(personas, "weeks", fmt, page.context["export_query"]))
    assert response.status_code == 200
    assert "own-team_weeks_all-dates" in response["Content-Disposition"]
    rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    assert rows[0] == ["Week of", "AutoCAD", "CFD cloud simulation", "Product-days"]
    assert rows[-1] == ["Total", "1", "1", "2"]


def test_the_grid_export_needs_a_person(admin_client, personas, premium_usage):
    assert admin_client.get(_url(personas, "weeks", "csv")).status_code == 404


def test_a_long_csv_streams_in_chunks_of_lines_not_a_line_at_a_time():
    from core.exports import CSV_CHUNK_ROWS, csv_response

    count = 3 * CSV_CHUNK_ROWS + 7
    rows = (["Person", "Tokens"] if n == 0 else [f"=person {n}", f"{n}.00"] for n in range(count + 1))
    chunks = [chunk.decode() for chunk in csv_response(rows, "long").streaming_content]
    # Streamed (more than one chunk, so never the whole file in memory), a chunk per 500 lines.
    assert len(chunks) == 4
    assert all(chunk.count("\r\n") <= CSV_CHUNK_ROWS for chunk in chunks)
    text = "".join(chunks)
    assert text.startswith("\ufeffPerson,Tokens\r\n")
    lines = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert len(lines) == count + 1
    assert lines[-1] == [f"'=person {count}", f"{count}.00"]  # still guarded against formulas
