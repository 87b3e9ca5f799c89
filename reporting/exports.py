"""The report exports' writers live in ``core.exports`` (billing's Orders export uses them
too, and billing may not import reporting); reporting's modules keep importing them from here."""

from core.exports import CSV_TYPE, FORMULA_START, NUMBER, XLSX_TYPE, csv_response, neutralise, xlsx_response

__all__ = ["CSV_TYPE", "FORMULA_START", "NUMBER", "XLSX_TYPE", "csv_response", "neutralise", "xlsx_response"]
