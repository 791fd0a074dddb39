"""Time ``reports summarize`` over N copies of the real report (default 1,000).

Run from the repository root::

    python benchmarks/summary_bench.py [--reports 1000] [--fixture PATH]

Copies ``../shared/fixtures/real-financial-report.zip`` into a temporary fetch
directory (``<balie>/<file>.zip`` and a ``manifest.jsonl``, as ``reports fetch``
leaves them), runs :func:`summarize_directory` once and prints reports/second.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURE = (REPO_ROOT / ".." / "shared" / "fixtures" / "real-financial-report.zip").resolve()

if str(REPO_ROOT) not in sys.path:  # run as a plain script, not only with -m
    sys.path.insert(0, str(REPO_ROOT))

from uitpas_async.cli.summarize import summarize_directory  # noqa: E402


def build_directory(directory: Path, fixture: Path, count: int) -> None:
    """Lay out ``count`` copies of ``fixture`` and their manifest, as reports fetch would."""
    data = fixture.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with (directory / "manifest.jsonl").open("w", encoding="utf-8") as manifest:
        for index in range(count):
            balie = f"balie-{index:04d}"
            path = directory / balie / "financialOverview_CC De Werf _20151007_1404.zip"
            path.parent.mkdir()
            shutil.copyfile(fixture, path)
            record = {
                "balie": balie,
                "name": f"CC {index}",
                "start": "2015-07-01",
                "end": "2015-09-30",
                "state": "done",
                "report_id": str(index),
                "path": str(path),
                "sha256": digest,
                "bytes": len(data),
                "error_code": None,
                "error_message": None,
            }
            manifest.write(json.dumps(record) + "\n")


def main() -> int:
    """Build the directory, summarize it once, print the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    args = parser.parse_args()
    if not args.fixture.is_file():
        print(f"fixture {args.fixture} is absent", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="summary-bench-") as temporary:
        directory = Path(temporary)
        build_directory(directory, args.fixture, args.reports)
        table = io.StringIO()  # 5,000 table rows would drown the figure
        started = time.perf_counter()
        status = summarize_directory(directory, stream=table)
        elapsed = time.perf_counter() - started
        lines = sum(1 for _ in (directory / "summary" / "lines.csv").open(encoding="utf-8")) - 1
    print(
        f"summarized {args.reports} reports ({lines} lines) in {elapsed:.2f} s: "
        f"{args.reports / elapsed:.0f} reports/s (exit status {status})"
    )
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
