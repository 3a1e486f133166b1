"""Benchmark of the count-level screen simulator.

Simulates a 20,000-cell x 10,000-gene screen (``--quick``: 4,000 x 2,000) and reports:

- cells per second;
- speed relative to numpy's ``Generator.negative_binomial`` drawing the same number of
  values (same means and dispersions, same chunking) in the same run: the raw-RNG limit,
  goal >= 2/3;
- peak memory (tracemalloc, in a fresh subprocess) as a multiple of the output CSR matrix
  (data + indices + indptr), goal <= 3.

Ends with one line ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _params(quick: bool):
    import simpert.sim as sim

    if quick:
        return sim.ScreenParams(n_genes=2000, n_perturbations=36, n_control_cells=400,
                                cells_per_perturbation=100, cell_count_dispersion=0.0)
    return sim.ScreenParams(n_genes=10000, n_perturbations=180, n_control_cells=2000,
                            cells_per_perturbation=100, cell_count_dispersion=0.0)


def _memory_child(quick: bool) -> None:
    import tracemalloc

    import simpert.sim as sim

    p = _params(quick)
    tracemalloc.start()
    a = sim.screen(p, rng=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    X = a.X
    csr = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    print(json.dumps({"peak": peak, "csr": csr, "nnz": int(X.nnz)}))


def _numpy_nb(a, chunk_elems: int = 1 << 21) -> float:
    """Time numpy negative_binomial drawing n_cells x n_genes values with the same laws."""
    mu = a.var["base_mean"].to_numpy()
    alpha = a.var["dispersion"].to_numpy()
    n = 1.0 / alpha
    prob = 1.0 / (1.0 + alpha * mu)
    g = np.random.default_rng(1)
    rows = max(1, chunk_elems // mu.size)
    t0 = time.perf_counter()
    left = a.n_obs
    while left > 0:
        r = min(rows, left)
        g.negative_binomial(n, prob, size=(r, mu.size))
        left -= r
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller screen (under a minute)")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        _memory_child(args.quick)
        return
    import simpert.sim as sim

    p = _params(args.quick)
    sim.screen(p.replace(n_genes=200, n_perturbations=2, n_control_cells=10), rng=0)  # warm-up
    t0 = time.perf_counter()
    a = sim.screen(p, rng=0)
    t_sim = time.perf_counter() - t0
    t_np = _numpy_nb(a)
    cells_per_s = a.n_obs / t_sim
    ratio = t_np / t_sim
    print(f"screen: {a.n_obs} cells x {a.n_vars} genes in {t_sim:.2f} s ({cells_per_s:,.0f} cells/s); "
          f"nnz {a.X.nnz:,} ({a.X.nnz / (a.n_obs * a.n_vars):.1%})")
    print(f"numpy negative_binomial, same {a.n_obs * a.n_vars:,} values: {t_np:.2f} s "
          f"({a.n_obs / t_np:,.0f} cells/s); speed ratio simpert/numpy = {ratio:.3f} (goal >= 0.667)")
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child"] + (["--quick"] if args.quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": ROOT})
    mem = json.loads(out.stdout.strip().splitlines()[-1])
    mult = mem["peak"] / mem["csr"]
    print(f"peak traced memory {mem['peak'] / 2**20:,.1f} MiB; output CSR {mem['csr'] / 2**20:,.1f} MiB; "
          f"ratio {mult:.2f} (goal <= 3)")
    print(f"RESULT cells={a.n_obs} genes={a.n_vars} sim_s={t_sim:.3f} cells_per_s={cells_per_s:.0f} "
          f"numpy_nb_s={t_np:.3f} speed_ratio_vs_numpy={ratio:.3f} peak_mem_over_csr={mult:.2f}")


if __name__ == "__main__":
    main()
