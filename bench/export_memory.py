"""Peak memory of the report exports: 1,000,000 rows through the CSV and the XLSX writer.

    .venv/bin/python bench/export_memory.py [--rows N]

Rows are generated lazily (what a report's table yields row by row); the CSV response is
consumed and thrown away, the XLSX file is written to a temporary file and streamed. The
peak is Python's allocations (tracemalloc) above the start, for each format. No database.
See docs/benchmarks.md for measured numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexadmin.settings")

import django

django.setup()

from reporting import exports  # noqa: E402

HEADER = ["User", "Tokens", "Products used", "Days used", "Last use"]


def rows(n: int):
    yield HEADER
    for i in range(n):
        yield [f"User {i}", f"{i % 997}.00", str(i % 7), str(i % 31), "2026-11-27"]
    yield ["Total", "0.00", "", "", ""]


def measure(name: str, run) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    size = run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name}: {size / 1e6:.1f} MB written in {time.perf_counter() - start:.1f} s, peak {peak / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    n = parser.parse_args().rows

    def csv_run() -> int:
        return sum(len(chunk) for chunk in exports.csv_response(rows(n), "bench").streaming_content)

    def xlsx_run() -> int:
        response = exports.xlsx_response(rows(n), "bench", sheet="By User")
        return sum(len(chunk) for chunk in response.streaming_content)

    print(f"{n:,} rows")
    measure("CSV", csv_run)
    measure("XLSX", xlsx_run)


if __name__ == "__main__":
    main()
