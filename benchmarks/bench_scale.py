"""Benchmark: a screen simulated to Zarr on Dask, pseudobulked by chunks and tested.

Full run: 1,000,000 cells x 2,000 genes (10,000 perturbations x ~95 cells, 2 replicates,
50,000 control cells), also at 500,000 cells; ``--quick``: 100,000 and 50,000 cells. Each
configuration runs in a fresh process with its own LocalCluster (1 or 2 single-threaded
worker processes), so every peak resident set size is that configuration's own. Printed:
cells/s per worker of the simulation, the 2-worker speed-up, the peak RSS of the main
process and of each worker, and the ratio of a worker's peak RSS to one chunk's size
(``chunk_cells x genes x 8`` bytes, the dense counts of a chunk) at two screen sizes with the
same perturbations (the smaller screen has half the cells per perturbation): it stays flat as
the screen grows when memory is bounded by the chunk. (Every worker also holds the screen's
model, about ``perturbations x genes x 8`` bytes of effects, which grows with the
perturbations, not the cells; it is printed.) Then the pseudobulk
(streamed from the store, 2 workers) and the DE fit of every perturbation against
control (native engine, one fit). Last line: ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from _child import run_child  # noqa: E402 - benchmarks/ is on sys.path when run as a script

GENES = 2000
CHUNK = 10_000
#: ``--genome``: a genome-wide screen (Replogle et al. 2022 scale) in one command.
GENOME = dict(cells=2_500_000, genes=8000, perturbations=10_000, chunk=5_000)


def _params(cells: int, genes: int = GENES, n_pert: int | None = None) -> dict:
    n_pert = n_pert or max(10, cells // 100)
    # genome scale: sparser genes (mean 0.25 counts at size factor 1, about 1 in 6 non-zero)
    scale = 1.0 if genes <= GENES else 0.5
    return dict(n_genes=genes, n_perturbations=n_pert, unmeasured_targets=max(0, n_pert - genes),
                n_control_cells=cells // 20,
                cells_per_perturbation=(cells - cells // 20) / n_pert, cell_count_dispersion=0.0,
                n_replicates=2, mean_shape=0.5, mean_scale=scale)


def _worker_peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB


def child(cells: int, workers: int, d: str, stage: str, genes: int = GENES, n_pert: int | None = None,
          chunk: int = CHUNK):
    import warnings

    import distributed
    import numpy as np

    import simpert as sp
    import simpert.sim  # noqa: F401  (imported before the clock starts: a user's session has it)

    warnings.simplefilter("ignore")
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40, memory_limit=0)
    client = distributed.Client(cluster)
    out = {"cells": cells, "workers": workers}
    store = os.path.join(d, f"s{cells}.zarr")
    try:
        if stage == "simulate":
            shutil.rmtree(store, ignore_errors=True)
            t0 = time.perf_counter()
            sp.sim.screen(rng=np.random.SeedSequence(0), out=store, chunk_cells=chunk, client=client,
                          **_params(cells, genes, n_pert))
            out["simulate_s"] = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            pb = sp.sim.pseudobulk_zarr(store, chunk_cells=50_000, client=client)
            out["pseudobulk_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = sp.de.deseq(pb, control="control")
            out["de_s"] = time.perf_counter() - t0
            out["samples"] = int(pb.n_obs)
            out["de_rows"] = int(len(res.table))
        peaks = client.run(_worker_peak)
        out["worker_peak_mb"] = sorted(float(v) for v in peaks.values())
    finally:
        client.close()
        cluster.close()
    out["main_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def _genome(where) -> int:
    g = GENOME
    with tempfile.TemporaryDirectory(dir=where) as d:
        t0 = time.perf_counter()
        sim = run(g["cells"], 2, d, "simulate", g["genes"], g["perturbations"], g["chunk"])
        print(f"simulate {g['cells']:,} x {g['genes']:,} ({g['perturbations']:,} perturbations): "
              f"{sim['simulate_s']:.0f} s; peak RSS main {sim['main_peak_mb']:.0f} MB, workers "
              f"{sim['worker_peak_mb']}", flush=True)
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
        down = run(g["cells"], 2, d, "downstream", g["genes"], g["perturbations"], g["chunk"])
        total = time.perf_counter() - t0
    print(f"store {size / 2**30:.1f} GiB; pseudobulk {down['pseudobulk_s']:.0f} s -> {down['samples']:,} samples; "
          f"DE {down['de_s']:.0f} s; peak RSS main {down['main_peak_mb']:.0f} MB, workers {down['worker_peak_mb']}")
    print(f"RESULT genome_cells={g['cells']} genes={g['genes']} perturbations={g['perturbations']} "
          f"simulate_s={sim['simulate_s']:.0f} pseudobulk_s={down['pseudobulk_s']:.0f} de_s={down['de_s']:.0f} "
          f"total_s={total:.0f} store_gib={size / 2**30:.1f} "
          f"peak_main_mb={max(sim['main_peak_mb'], down['main_peak_mb']):.0f} "
          f"peak_worker_mb={max(sim['worker_peak_mb'] + down['worker_peak_mb']):.0f}")
    return 0


def run(cells, workers, d, stage, *extra):
    return run_child(__file__, [cells, workers, d, stage, *extra])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None, help="where to write the stores (default: a temporary directory)")
    ap.add_argument("--genome", action="store_true", help="one genome-scale screen: 2.5M cells x 8,000 genes "
                    "x 10,000 perturbations simulated (2 workers), pseudobulked and tested, timed per stage")
    args = ap.parse_args()
    if args.child:
        child(int(args.child[0]), int(args.child[1]), args.child[2], args.child[3], *map(int, args.child[4:]))
        return 0
    if args.genome:
        return _genome(args.dir)
    big, small = (100_000, 50_000) if args.quick else (1_000_000, 500_000)
    chunk_mb = CHUNK * GENES * 8 / 2**20
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        one = run(big, 1, d, "simulate")
        two = run(big, 2, d, "simulate")
        half = run(small, 2, d, "simulate", GENES, _params(big)["n_perturbations"])
        down = run(big, 2, d, "downstream")
    speedup = one["simulate_s"] / two["simulate_s"]
    rate1 = big / one["simulate_s"]
    rate2 = big / two["simulate_s"] / 2
    ratio_big = max(two["worker_peak_mb"]) / chunk_mb
    ratio_small = max(half["worker_peak_mb"]) / chunk_mb
    print(f"simulate {big:,} cells x {GENES:,} genes to Zarr (chunks of {CHUNK:,} cells, {chunk_mb:.0f} MB dense):")
    print(f"  1 worker: {one['simulate_s']:.1f} s ({rate1:,.0f} cells/s per worker); peak RSS main "
          f"{one['main_peak_mb']:.0f} MB, worker {one['worker_peak_mb']}")
    print(f"  2 workers: {two['simulate_s']:.1f} s ({rate2:,.0f} cells/s per worker), speed-up {speedup:.2f}x "
          f"(goal >= 1.7); peak RSS main {two['main_peak_mb']:.0f} MB, workers {two['worker_peak_mb']}")
    n_pert = _params(big)["n_perturbations"]
    print(f"  worker peak RSS / chunk size: {ratio_small:.2f} at {small:,} cells, {ratio_big:.2f} at {big:,} cells "
          f"(both {n_pert:,} perturbations; their effects {n_pert * GENES * 8 / 2**20:.0f} MB in every worker)")
    print(f"pseudobulk (2 workers) {down['pseudobulk_s']:.1f} s -> {down['samples']:,} samples; DE (one fit) "
          f"{down['de_s']:.1f} s; peak RSS main {down['main_peak_mb']:.0f} MB, workers {down['worker_peak_mb']}")
    print(f"RESULT cells={big} genes={GENES} sim_1w_s={one['simulate_s']:.1f} sim_2w_s={two['simulate_s']:.1f} "
          f"speedup_2w={speedup:.3f} cells_per_s_per_worker={rate2:.0f} rss_over_chunk_small={ratio_small:.2f} "
          f"rss_over_chunk_big={ratio_big:.2f} pseudobulk_s={down['pseudobulk_s']:.1f} de_s={down['de_s']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
