"""Regenerate the paper figures: ``python -m paper_figures [--fast] [--jobs N] [--only figN...]``."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from paper_figures._framework import FIGURES, ROOT, build_figure


def _one(name: str, fast: bool, out: str, cache: str, force: bool):
    try:
        return build_figure(name, fast=fast, out_dir=Path(out), cache_dir=Path(cache), force=force)
    except Exception:  # reported, and the run fails at the end
        return {"name": name, "status": "failed", "error": traceback.format_exc()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paper_figures", description=__doc__)
    ap.add_argument("--fast", action="store_true", help="small sizes (the CI run, about 3 minutes)")
    ap.add_argument("--jobs", type=int, default=2, help="figures built in parallel (default 2)")
    ap.add_argument("--only", nargs="*", default=None, help="figure names or prefixes, e.g. fig1 fig4")
    ap.add_argument("--force", action="store_true", help="rebuild even when the cache is fresh")
    ap.add_argument("--out", default=str(ROOT / "out"), help="output folder")
    args = ap.parse_args(argv)

    names = list(FIGURES)
    if args.only:
        names = [n for n in names if any(n.startswith(o) for o in args.only)]
        if not names:
            print(f"error: --only {args.only} matches no figure; figures are {', '.join(FIGURES)}", file=sys.stderr)
            return 2
    present = [n for n in names if importlib.util.find_spec(f"paper_figures.{n}") is not None]
    missing = [n for n in names if n not in present]
    cache = str(ROOT / "cache")
    start = time.perf_counter()
    results = []
    if args.jobs > 1 and len(present) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futs = [pool.submit(_one, n, args.fast, args.out, cache, args.force) for n in present]
            for f in futs:
                results.append(f.result())
                r = results[-1]
                print(f"  {r['name']}: {r['status']}" + (f" in {r['seconds']:.1f}s" if "seconds" in r else ""), flush=True)
    else:
        for n in present:
            results.append(_one(n, args.fast, args.out, cache, args.force))
            r = results[-1]
            print(f"  {r['name']}: {r['status']}" + (f" in {r['seconds']:.1f}s" if "seconds" in r else ""), flush=True)
    failed = [r for r in results if r["status"] == "failed"]
    for r in failed:
        print(f"\n--- {r['name']} failed ---\n{r['error']}", file=sys.stderr)
    ok = len(results) - len(failed)
    print(f"\npaper figures: {ok} of {len(names)} made in {time.perf_counter() - start:.0f}s into {args.out}")
    if missing:
        print(f"missing (no script yet): {', '.join(missing)}", file=sys.stderr)
    return 1 if (failed or missing) else 0


if __name__ == "__main__":
    sys.exit(main())
