"""Exports of a table (the reports', billing's Orders and Customers): rows of cells, the
first row the header. Both stream in constant memory: CSV as a streaming response, XLSX
written row by row with XlsxWriter's ``constant_memory`` mode into a temporary file that is
streamed and gone. No domain here: callers build the rows (django-tables2's ``as_values``)."""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterable, Iterator

import xlsxwriter
from django.http import FileResponse, StreamingHttpResponse

# A cell a spreadsheet would read as a formula (OWASP "CSV injection"): = + - @, and a tab or
# carriage return before one of them.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^\d+(\.\d+)?$")
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralise(value: object) -> str:
    """The cell as text, with a leading apostrophe when it would start a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


class _Echo:
    """A file whose ``write`` returns the line: csv.writer then yields what to stream."""

    def write(self, value: str) -> str:
        return value


# Lines sent to the client together: a chunk per line would cost the response's own
# per-chunk work (encoding, the server's write) a million times for a million rows.
CSV_CHUNK_ROWS = 500


def csv_response(rows: Iterable[list], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        chunk = ["\ufeff"]  # so that Excel reads UTF-8
        for row in rows:
            chunk.append(writer.writerow([neutralise(cell) for cell in row]))
            if len(chunk) >= CSV_CHUNK_ROWS:
                yield "".join(chunk)
                chunk = []
        if chunk:
            yield "".join(chunk)

    response = StreamingHttpResponse(lines(), content_type=CSV_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def xlsx_response(rows: Iterable[list], filename: str, *, sheet: str) -> FileResponse:
    handle = tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False)  # noqa: SIM115 (streamed, then unlinked)
    handle.close()
    try:
        workbook = xlsxwriter.Workbook(handle.name, {"constant_memory": True, "strings_to_formulas": False})
        worksheet = workbook.add_worksheet(sheet[:31])
        bold = workbook.add_format({"bold": True})
        last = None
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                text = "" if cell is None else str(cell)
                if r > 0 and c > 0 and NUMBER.match(text):
                    worksheet.write_number(r, c, float(text))
                else:
                    worksheet.write_string(r, c, neutralise(text), bold if r == 0 else None)
            last = r
        if last is not None:
            worksheet.freeze_panes(1, 0)
        workbook.close()
        stream = open(handle.name, "rb")  # noqa: SIM115 (FileResponse closes it)
    finally:
        # The open stream keeps the bytes; the name is gone at once.
        os.unlink(handle.name)
    return FileResponse(stream, as_attachment=True, filename=f"{filename}.xlsx", content_type=XLSX_TYPE)
