"""Benchmark: simpert.metrics.evaluate with anchors and 1,000 bootstrap resamples vs cell-eval2.

Input (full run): 200 perturbations x 40 cells x 2,000 genes plus 1,000 control cells, raw
counts; the prediction is an independent draw with the effects shrunk by 0.7. Both tools
score the ``vcc2026`` suite and its anchors on the same files, in the same run:

- simpert: ``evaluate(pred, real, profile="vcc2026", n_boot=1000)``: the six metrics, the
  mean-response baseline and the 5-split replicate anchors, the score, and 1,000 bootstrap
  resamples of perturbations for every aggregate and score;
- cell-eval2 0.20.0: ``compute_metrics`` on the prediction, ``build_generic_baseline`` (its
  baseline anchor) and ``compute_replicate_anchor`` (its 5-split replicate): what its
  scoring of a submission needs, without intervals (cell-eval2 has none).

Each tool runs in its own process with one BLAS / numba thread, after a warm-up call on a
slice (numba compilation and lazy imports are not timed); peak memory is the peak resident
set size above the level once the inputs are loaded. ``--quick``: 40 perturbations x 40
cells x 500 genes. Last line: ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_metrics import THREADS, _peak_mb, _reset_peak, _rss_mb, _slices, make_inputs  # noqa: E402


def child(tool, d):
    import gc
    import logging
    from dataclasses import replace

    import anndata as ad

    logging.disable(logging.WARNING)
    real = ad.read_h5ad(os.path.join(d, "real.h5ad"))
    pred = ad.read_h5ad(os.path.join(d, "pred.h5ad"))
    if tool == "cell-eval2":
        from cell_eval2 import EvalConfig, build_generic_baseline, compute_metrics
        from cell_eval2.anchor import compute_replicate_anchor

        cfg = replace(EvalConfig.from_preset("vcc2026"), pert_col="perturbation", control="control",
                      num_threads=1, device="cpu")
        compute_metrics(*_slices(pred, real), config=cfg)
        gc.collect()
        base = _rss_mb()
        _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        compute_metrics(pred, real, config=cfg)
        build_generic_baseline(real, config=cfg)
        compute_replicate_anchor(real, config=cfg)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        out = {}
    else:
        import warnings

        from simpert.metrics import evaluate

        warnings.simplefilter("ignore")
        evaluate(*_slices(pred, real), profile="vcc2026", n_boot=10)
        gc.collect()
        base = _rss_mb()
        _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        res = evaluate(pred, real, profile="vcc2026", n_boot=1000)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        out = {"avg_score": float(res.aggregate["score"].mean())}
    print(json.dumps({"time_s": elapsed, "cpu_s": cpu, "peak_mb": _peak_mb() - base, **out}))


def run_child(tool, d):
    env = dict(os.environ, **THREADS)
    out = subprocess.run([sys.executable, __file__, "--child", tool, d], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    size = (40, 500, 40, 200) if args.quick else (200, 2000, 40, 1000)
    with tempfile.TemporaryDirectory() as d:
        make_inputs(d, size[0], size[1], size[2], size[3], seed=7)
        ours = run_child("simpert", d)
        theirs = run_child("cell-eval2", d)
    speed = theirs["time_s"] / ours["time_s"]
    mem = ours["peak_mb"] / max(theirs["peak_mb"], 1e-9)
    print(f"{size[0]} perturbations x {size[2]} cells x {size[1]} genes: cell-eval2 (metrics + anchors) "
          f"{theirs['time_s']:.2f} s {theirs['peak_mb']:.0f} MB | simpert evaluate (metrics + anchors + 1,000 "
          f"bootstrap) {ours['time_s']:.2f} s {ours['peak_mb']:.0f} MB | speed-up {speed:.2f}x, memory {mem:.2f}x "
          f"| avg score {ours['avg_score']:.4f}")
    print(f"RESULT evaluate_speedup={speed:.3f} evaluate_memory_ratio={mem:.3f} "
          f"simpert_s={ours['time_s']:.2f} celleval2_s={theirs['time_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
