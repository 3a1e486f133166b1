"""Line and branch coverage per subpackage of simpert, from the ``.coverage`` data file.

Usage: ``python tools/coverage_table.py [--data .coverage] [--report docs/coverage.md]``
(``make coverage`` runs the tests under coverage first).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table(data_file: str) -> list[tuple]:
    """Rows (subpackage, statements, missed, branches, partial, line %, branch %)."""
    import coverage

    cov = coverage.Coverage(data_file=data_file)
    cov.load()
    acc = defaultdict(lambda: [0, 0, 0, 0])
    for path in cov.get_data().measured_files():
        rel = Path(path).resolve().relative_to(ROOT) if Path(path).resolve().is_relative_to(ROOT) else None
        if rel is None or rel.parts[0] != "simpert":
            continue
        pkg = rel.parts[1] if len(rel.parts) > 2 else "(top level)"
        analysis = cov._analyze(path)  # noqa: SLF001 - the public API gives only text reports
        nums = analysis.numbers
        a = acc[pkg]
        a[0] += nums.n_statements
        a[1] += nums.n_missing
        a[2] += nums.n_branches
        a[3] += nums.n_partial_branches + nums.n_missing_branches
    rows = []
    for pkg in sorted(acc):
        s, m, b, pb = acc[pkg]
        rows.append((pkg, s, m, b, pb, 100.0 * (s - m) / max(s, 1), 100.0 * (b - pb) / max(b, 1)))
    return rows


START, END = "<!-- coverage table: made by make coverage -->", "<!-- end of coverage table -->"


def _with_table(report: Path, text: str) -> str:
    """The report with its table block replaced (the rest of the page is kept)."""
    block = (f"{START}\n\nMade by `make coverage` (pytest-cov, branch coverage, the whole Python "
             f"suite).\n\n{text}\n{END}")
    old = report.read_text() if report.is_file() else "# Test coverage\n\n"
    if START in old and END in old:
        head, rest = old.split(START, 1)
        return head + block + rest.split(END, 1)[1]
    title, _, body = old.partition("\n\n")
    return f"{title}\n\n{block}\n\n{body}".rstrip("\n") + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / ".coverage"))
    ap.add_argument("--report", default=None)
    args = ap.parse_args(argv)
    rows = table(args.data)
    lines = ["| subpackage | statements | missed | branches | branches not taken | line coverage | branch coverage |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {p} | {s} | {m} | {b} | {pb} | {lc:.1f}% | {bc:.1f}% |" for p, s, m, b, pb, lc, bc in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.report:
        sys.path.insert(0, str(ROOT))
        from simpert._io import write_text_atomic

        write_text_atomic(args.report, _with_table(Path(args.report), text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
