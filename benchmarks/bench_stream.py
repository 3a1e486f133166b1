"""Benchmark: scoring a stored screen by blocks of rows against the loaded screen.

A screen (``--quick``: 20,000 cells x 2,000 genes, 200 perturbations; full: 200,000 cells x
2,000 genes, 2,000 perturbations) is written to Zarr. Each measurement runs in a fresh
process, so every peak resident set size is its own:

- ``wilcoxon``: ``simpert.de.wilcoxon`` of the loaded screen (read, then test) vs of the
  store (``chunk_cells`` = a tenth of the screen);
- ``evaluate``: ``simpert.metrics.evaluate`` of a technical duplicate against the screen
  (profile and DE metrics, anchors with one split, 200 bootstrap resamples), loaded vs stored;
- ``pds``: the perturbation discrimination score over 10,000 perturbations (``--quick``:
  4,000) x 2,000 genes, the full distance matrix vs blocks of 256 rows;
- ``calibrate``: one calibration replicate drawn as cells vs as pseudobulk
  (``Scenario(output="pseudobulk")``).

Printed: seconds and peak RSS of each side and their ratios (stored / loaded). Last line:
``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from _child import run_child  # noqa: E402 - benchmarks/ is on sys.path when run as a script

METRICS = ["pearson_delta", "mse", "discrimination_score_l1", "overlap_at_N", "de_spearman_lfc_sig"]


def _rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _size(quick):
    return (20_000, 200) if quick else (200_000, 2_000)


def child(task: str, d: str, quick: bool):
    import warnings

    import anndata as ad
    import numpy as np

    import simpert as sp

    warnings.simplefilter("ignore")
    real, pred = os.path.join(d, "real.zarr"), os.path.join(d, "pred.zarr")
    cells, perts = _size(quick)
    t0 = time.perf_counter()
    if task == "make":
        p = dict(n_genes=2000, n_perturbations=perts, n_control_cells=cells // 10,
                 cells_per_perturbation=(cells - cells // 10) / perts, mean_scale=2.0)
        a = sp.sim.screen(rng=0, **p)
        a.write_zarr(real)
        sp.sim.redraw(a, rng=1).write_zarr(pred)
    elif task == "wilcoxon_loaded":
        sp.de.wilcoxon(ad.read_zarr(real))
    elif task == "wilcoxon_stored":
        sp.de.wilcoxon(real, chunk_cells=cells // 10)
    elif task == "evaluate_loaded":
        sp.metrics.evaluate(ad.read_zarr(pred), ad.read_zarr(real), metrics=METRICS, n_splits=1, n_boot=200)
    elif task == "evaluate_stored":
        sp.metrics.evaluate(pred, real, metrics=METRICS, n_splits=1, n_boot=200, chunk_cells=cells // 10)
    elif task in ("pds_full", "pds_blocks"):
        from simpert.metrics import cross_distances, own_ranks
        from simpert.metrics._distance import rank_within_rows

        n = 4_000 if quick else 10_000
        rng = np.random.default_rng(0)
        A = rng.normal(size=(n, 2000))
        B = A + rng.normal(size=(n, 2000))
        t0 = time.perf_counter()
        if task == "pds_full":
            rank_within_rows(cross_distances(A, B, "l1", chunk_size=256))
        else:
            own_ranks(A, B, "l1", chunk_size=256)
    elif task in ("calibrate_cells", "calibrate_pseudobulk"):
        from simpert.calibrate import Scenario
        from simpert.calibrate._pipeline import default_simulate

        p = dict(n_genes=2000, n_perturbations=perts, n_control_cells=cells // 10,
                 cells_per_perturbation=(cells - cells // 10) / perts)
        out = "cells" if task == "calibrate_cells" else "pseudobulk"
        default_simulate(Scenario("s", params=p, output=out), rng=np.random.SeedSequence(0))
    print(json.dumps({"s": time.perf_counter() - t0, "rss_mb": _rss()}))


def run(task, d, quick):
    return run_child(__file__, [task, d] + (["--quick"] if quick else []))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.quick)
        return 0
    cells, perts = _size(args.quick)
    res = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        run("make", d, args.quick)
        for pair in ("wilcoxon", "evaluate", "pds", "calibrate"):
            a, b = (("loaded", "stored") if pair in ("wilcoxon", "evaluate") else
                    ("full", "blocks") if pair == "pds" else ("cells", "pseudobulk"))
            x, y = run(f"{pair}_{a}", d, args.quick), run(f"{pair}_{b}", d, args.quick)
            res[pair] = (a, x, b, y)
            print(f"{pair}: {a} {x['s']:.1f} s, {x['rss_mb']:.0f} MB; {b} {y['s']:.1f} s, {y['rss_mb']:.0f} MB; "
                  f"time {b}/{a} {y['s'] / x['s']:.2f}, peak RSS {b}/{a} {y['rss_mb'] / x['rss_mb']:.2f}", flush=True)
    print("RESULT cells=%d perturbations=%d " % (cells, perts) + " ".join(
        f"{k}_time_ratio={v[3]['s'] / v[1]['s']:.2f} {k}_rss_ratio={v[3]['rss_mb'] / v[1]['rss_mb']:.2f}"
        for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
