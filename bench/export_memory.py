"""Peak memory and time of the report exports: 1,000,000 rows through the CSV and the XLSX
writer, against the bare libraries writing the same rows (issue 14, goal 6).

    .venv/bin/python bench/export_memory.py [--rows 1000000] [--runs 3]

Rows are generated lazily (what a report's table yields row by row). Each run measures, in
an order that rotates from run to run:

- **CSV**: ``core.exports.csv_response`` (what every CSV export returns), its streamed
  content consumed and thrown away;
- **CSV baseline**: the standard library's ``csv.writer`` writing the same rows to a sink
  that throws them away (no formula guard, no response);
- **XLSX**: ``core.exports.xlsx_response`` (XlsxWriter's ``constant_memory`` mode into a
  temporary file, then streamed), its content consumed;
- **XLSX baseline**: XlsxWriter in ``constant_memory`` mode writing the same rows with
  ``write_row`` to a temporary file (no number detection, no formula guard, no header format).

The peak is Python's allocations (tracemalloc) above the start of each measurement; the goal
is under 50 MB. It prints each run, then min / median / max of time and peak per writer and
the ratio of each export's time to its baseline's in the same run. No database. See
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexadmin.settings")

import django

django.setup()

import xlsxwriter  # noqa: E402

from core import exports  # noqa: E402

HEADER = ["User", "Tokens", "Products used", "Days used", "Last use"]
GOAL_MIB = 50


def rows(n: int):
    yield HEADER
    for i in range(n):
        yield [f"User {i}", f"{i % 997}.00", str(i % 7), str(i % 31), "2026-11-27"]
    yield ["Total", "0.00", "", "", ""]


class Discard:
    def write(self, value: str) -> int:
        return len(value)


def csv_export(n: int) -> int:
    return sum(len(chunk) for chunk in exports.csv_response(rows(n), "bench").streaming_content)


def csv_baseline(n: int) -> int:
    writer = csv.writer(Discard())
    return sum(writer.writerow(row) for row in rows(n))


def xlsx_export(n: int) -> int:
    response = exports.xlsx_response(rows(n), "bench", sheet="By User")
    return sum(len(chunk) for chunk in response.streaming_content)


def xlsx_baseline(n: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.xlsx"
        workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        worksheet = workbook.add_worksheet("By User")
        for r, row in enumerate(rows(n)):
            worksheet.write_row(r, 0, row)
        workbook.close()
        return path.stat().st_size


WRITERS = {
    "CSV": csv_export,
    "CSV baseline": csv_baseline,
    "XLSX": xlsx_export,
    "XLSX baseline": xlsx_baseline,
}


def measure(writer, n: int) -> tuple[float, float, int]:
    """(seconds, peak MiB above the start, bytes written)."""
    tracemalloc.start()
    start = time.perf_counter()
    size = writer(n)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, size


def spread(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="alternating runs (default 3)")
    args = parser.parse_args()
    names = list(WRITERS)
    figures: dict[str, dict[str, list[float]]] = {name: {"s": [], "mib": [], "mb": []} for name in names}
    print(f"{args.rows:,} rows, {args.runs} runs, load {os.getloadavg()[0]:.1f}")
    for number in range(args.runs):
        order = names[number % len(names) :] + names[: number % len(names)]
        line = []
        for name in order:
            seconds, mib, size = measure(WRITERS[name], args.rows)
            figures[name]["s"].append(seconds)
            figures[name]["mib"].append(mib)
            figures[name]["mb"].append(size / 1e6)
            line.append(f"{name} {seconds:.1f} s, peak {mib:.1f} MiB, {size / 1e6:.1f} MB")
        print(f"run {number + 1}: " + "; ".join(line))
    print("summary (min / median / max):")
    for name in names:
        f = figures[name]
        text = f"  {name:14} {spread(f['s'], '.1f')} s, peak {spread(f['mib'], '.1f')} MiB, {f['mb'][0]:.1f} MB"
        baseline = f"{name} baseline"
        if baseline in figures:
            ratio = [a / b for a, b in zip(f["s"], figures[baseline]["s"], strict=True)]
            worst = max(f["mib"])
            text += f"; time {spread(ratio, '.2f')}x its baseline; peak under {GOAL_MIB} MiB: "
            text += "yes" if worst < GOAL_MIB else "NO"
        print(text)


if __name__ == "__main__":
    main()
