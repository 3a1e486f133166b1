"""Benchmark: simpert.metrics against cell-eval 0.8.x on the same inputs, in one run.

Scenarios: (a) a pseudobulk screen (1,000 perturbations x 8,000 genes, 2 samples per
perturbation, 20 control samples) and (b) a single-cell screen (200 perturbations x
40 cells x 2,000 genes, 1,000 control cells). Profiles: cell-eval's "vcc" (mae,
discrimination_score_l1, overlap_at_N) and "full" minus the metrics simpert does not
implement (clustering_agreement, de_spearman_sig, de_nsig_counts). Both tools get the
same DE tables (drawn from the simulated truth), so DE time is not measured.

Both tools run with one BLAS thread. Each (tool, scenario, profile) runs in its own process
that reads the inputs from disk, so peak memory is the process's peak resident set size
above its level once the inputs are loaded. Both tools get the same input, log-normalised
AnnData (normalised before the clock starts), and are timed from it to the tidy table;
the speed-up is the ratio of wall-clock times (CPU times are printed too, since the
machine may be shared). A third run, "simpert (counts)", times simpert from the raw
counts (normalisation included) for reference. Values of every shared metric are compared
(max |difference| over perturbations, with the metric where it is largest): pr_auc and
roc_auc differ by up to a few 1e-6 at 8,000 genes because cell-eval passes float32 labels
to scikit-learn, which then accumulates precision and recall in float32; simpert
accumulates in float64.

The same run also times the 2026 challenge suite: simpert's ``vcc2026`` profile
(:func:`simpert.metrics.vcc2026_metrics`) against cell-eval2 0.20.0 (``compute_metrics``
with its ``vcc2026`` preset, CPU, one thread; both tools first make a warm-up call on a
slice, which compiles cell-eval2's numba kernels), both from the raw counts, each computing its own Wilcoxon DE tables (DE time
included), on both scenarios; per-perturbation values and the six aggregates are compared. ``--quick`` runs a smaller version.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

VCC = ["mae", "discrimination_score_l1", "overlap_at_N"]
FULL = ["pearson_delta", "mse", "mae", "mse_delta", "mae_delta", "discrimination_score_l1",
        "discrimination_score_l2", "discrimination_score_cosine", "pearson_edistance",
        "overlap_at_N", "overlap_at_50", "overlap_at_100", "overlap_at_200", "overlap_at_500",
        "precision_at_N", "precision_at_50", "precision_at_100", "precision_at_200",
        "precision_at_500", "de_direction_match", "de_spearman_lfc_sig", "de_sig_genes_recall",
        "pr_auc", "roc_auc"]
CE_SKIP = ["clustering_agreement", "de_spearman_sig", "de_nsig_counts"]
# one BLAS / numba thread for both tools: stable timings on a shared machine
THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak() -> None:
    """Reset the kernel's peak resident set size of this process (Linux), if possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_mb() -> float:
    """Peak resident set size since the last reset (VmHWM; ru_maxrss where unavailable)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_inputs(out, n_perts, n_genes, per_pert, n_ctrl, seed=0):
    """Write real/pred count AnnData and DE tables (parquet) for one scenario."""
    import anndata as ad
    import pandas as pd
    import polars as pl
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    genes = np.array([f"G{i:05d}" for i in range(n_genes)])
    perts = genes[rng.choice(n_genes, n_perts, replace=False)]  # named by target (cell-eval style)
    base = rng.gamma(1.0, 3.0, size=n_genes) + 0.05
    lfc = np.where(rng.random((n_perts, n_genes)) < 0.05, rng.normal(0, 1.0, (n_perts, n_genes)), 0.0)
    lfc[np.arange(n_perts), np.searchsorted(genes, perts)] = -2.0

    def draw(noise_seed, scale):
        r = np.random.default_rng(noise_seed)
        blocks, labels = [], []
        for k in range(n_perts):
            mu = base * 2.0 ** (scale * lfc[k])
            lib = r.lognormal(0, 0.2, (per_pert, 1))
            blocks.append(sp.csr_matrix(r.negative_binomial(5, 5 / (5 + mu * lib)).astype(np.int32)))
            labels += [perts[k]] * per_pert
        lib = r.lognormal(0, 0.2, (n_ctrl, 1))
        blocks.append(sp.csr_matrix(r.negative_binomial(5, 5 / (5 + base * lib)).astype(np.int32)))
        labels += ["control"] * n_ctrl
        X = sp.vstack(blocks).tocsr()
        obs = pd.DataFrame({"perturbation": pd.Categorical(labels, categories=["control", *perts])},
                           index=[f"c{i}" for i in range(len(labels))])
        return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))

    real, pred = draw(seed + 1, 1.0), draw(seed + 2, 0.7)
    real.write_h5ad(os.path.join(out, "real.h5ad"))
    pred.write_h5ad(os.path.join(out, "pred.h5ad"))

    def de(scale, s):
        r = np.random.default_rng(s)
        tl = scale * lfc + r.normal(0, 0.2, lfc.shape)
        p = np.where(lfc != 0, r.beta(0.3, 8, lfc.shape), r.uniform(0, 1, lfc.shape))
        fdr = np.minimum(1.0, p * 3)
        return pl.DataFrame({"target": np.repeat(perts, n_genes), "feature": np.tile(genes, n_perts),
                             "log2_fold_change": tl.ravel(), "p_value": p.ravel(), "fdr": fdr.ravel()})

    de(1.0, seed + 3).write_parquet(os.path.join(out, "de_real.parquet"))
    de(0.7, seed + 4).write_parquet(os.path.join(out, "de_pred.parquet"))


def _slices(pred, real):
    """Two perturbations and the control of ``pred`` and ``real`` (for warm-up calls)."""
    labs = real.obs["perturbation"].astype(str).to_numpy()
    few = ["control", *sorted(set(labs) - {"control"})[:2]]
    return (pred[pred.obs["perturbation"].astype(str).isin(few).to_numpy()].copy(),
            real[np.isin(labs, few)].copy())


def child_vcc2026(tool, d):
    """Time one tool on the vcc2026 suite from the raw counts (DE included)."""
    import gc
    import logging
    from dataclasses import replace

    import anndata as ad
    import pandas as pd

    logging.disable(logging.WARNING)
    real = ad.read_h5ad(os.path.join(d, "real.h5ad"))
    pred = ad.read_h5ad(os.path.join(d, "pred.h5ad"))
    if tool == "cell-eval2":
        from cell_eval2 import EvalConfig, aggregate_metrics, compute_metrics

        cfg = replace(EvalConfig.from_preset("vcc2026"), pert_col="perturbation", control="control",
                      num_threads=1, device="cpu")
        compute_metrics(*_slices(pred, real), config=cfg)  # warm-up: numba compilation is not timed
        gc.collect()
        base = _rss_mb()
        _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        df = compute_metrics(pred, real, config=cfg)
        agg = aggregate_metrics(df)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        tidy = df.to_pandas()[["perturbation", "metric", "value"]]
        agg = agg.to_pandas().rename(columns={"mean": "value"})
    else:
        from simpert.metrics import vcc2026_metrics

        vcc2026_metrics(*_slices(pred, real))  # the same warm-up (first BLAS call, lazy imports)
        gc.collect()
        base = _rss_mb()
        _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        res = vcc2026_metrics(pred, real)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        tidy = res.per_perturbation.reset_index().melt(id_vars="perturbation", var_name="metric",
                                                       value_name="value").dropna()
        agg = res.aggregate.rename("value").rename_axis("metric").reset_index()
    agg["perturbation"] = "__aggregate__"
    out = pd.concat([tidy, agg[["perturbation", "metric", "value"]]], ignore_index=True)
    out.to_csv(os.path.join(d, f"{tool}_vcc2026.csv"), index=False)
    print(json.dumps({"time_s": elapsed, "cpu_s": cpu, "peak_mb": _peak_mb() - base}))


def child(tool, profile, d):
    import gc

    import anndata as ad
    import polars as pl
    import scipy.sparse as sp

    from simpert._profiles import lognormalize

    real = ad.read_h5ad(os.path.join(d, "real.h5ad"))
    pred = ad.read_h5ad(os.path.join(d, "pred.h5ad"))
    de_real = pl.read_parquet(os.path.join(d, "de_real.parquet"))
    de_pred = pl.read_parquet(os.path.join(d, "de_pred.parquet"))
    names = VCC if profile == "vcc" else FULL
    if tool != "simpert-counts":  # the input both tools are compared on
        for a in (real, pred):
            a.X = sp.csr_matrix(lognormalize(a.X))
    if tool == "cell-eval":
        from cell_eval import MetricsEvaluator

        gc.collect()
        base = _rss_mb()
        _reset_peak()  # the peak of loading and normalising the inputs does not count
        t0, c0 = time.perf_counter(), time.process_time()
        ev = MetricsEvaluator(adata_pred=pred, adata_real=real, de_pred=de_pred, de_real=de_real,
                              control_pert="control", pert_col="perturbation", num_threads=1,
                              outdir=os.path.join(d, "ce_out"))
        res, _ = ev.compute(profile=profile, skip_metrics=CE_SKIP, write_csv=False)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        tidy = res.to_pandas().melt(id_vars="perturbation", var_name="metric", value_name="value")
    else:
        from simpert._profiles import group_profiles
        from simpert.metrics import score
        from simpert.predict._types import Prediction, Predictions, Split

        gc.collect()
        base = _rss_mb()
        _reset_peak()  # the peak of loading and normalising the inputs does not count
        t0, c0 = time.perf_counter(), time.process_time()
        test = tuple(str(p) for p in real.obs["perturbation"].cat.categories[1:])
        prof = group_profiles(pred)
        prof.index = prof.index.astype(str)
        preds = Predictions([Prediction("model", prof.loc[list(test)], prof.loc["control"], pred)])
        split = Split(train=(), test=test)
        tidy = score(preds, real, split, metrics=names, de={"real": de_real, "model": de_pred})
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    tidy = tidy[tidy["metric"].isin(names)]
    tidy[["perturbation", "metric", "value"]].to_csv(os.path.join(d, f"{tool}_{profile}.csv"), index=False)
    print(json.dumps({"time_s": elapsed, "cpu_s": cpu, "peak_mb": _peak_mb() - base}))


def run_child(tool, profile, d):
    out = subprocess.run([sys.executable, __file__, "--child", tool, profile, d], capture_output=True,
                         text=True, env={**os.environ, **THREADS, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
    if out.returncode != 0:
        raise RuntimeError(f"{tool} {profile} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(d, profile, tool="simpert", ref="cell-eval"):
    import pandas as pd

    a = pd.read_csv(os.path.join(d, f"{ref}_{profile}.csv")).set_index(["perturbation", "metric"])["value"]
    b = pd.read_csv(os.path.join(d, f"{tool}_{profile}.csv")).set_index(["perturbation", "metric"])["value"]
    both = a.index.intersection(b.index)
    x, y = a.loc[both].to_numpy(float), b.loc[both].to_numpy(float)
    nan_agree = np.isnan(x) == np.isnan(y)
    if ref == "cell-eval2":  # undefined values: no row in cell-eval2, a dropped NaN in simpert
        shared = set(a.index.get_level_values("metric")) & set(b.index.get_level_values("metric"))
        a, b = (s[s.index.get_level_values("metric").isin(shared)].dropna() for s in (a, b))
        agg = [s.index[s.index.get_level_values("perturbation") == "__aggregate__"] for s in (a, b)]
        a, b = (s.drop(i.difference(j)) for s, i, j in ((a, agg[0], agg[1]), (b, agg[1], agg[0])))
        nan_agree = np.array([set(a.index) == set(b.index)])
    diff = pd.Series(np.abs(x - y), index=both).groupby(level="metric").max()
    worst = diff.idxmax() if diff.notna().any() else ""
    return float(np.nanmax(diff)) if diff.notna().any() else 0.0, bool(nan_agree.all()), len(both), worst


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small inputs (under a minute)")
    ap.add_argument("--child", nargs=3, metavar=("TOOL", "PROFILE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child[1] == "vcc2026":
            child_vcc2026(args.child[0], args.child[2])
        else:
            child(*args.child)
        return
    scen = {
        "pseudobulk": dict(n_perts=1000, n_genes=8000, per_pert=2, n_ctrl=20),
        "single_cell": dict(n_perts=200, n_genes=2000, per_pert=40, n_ctrl=1000),
    }
    if args.quick:
        scen = {
            "pseudobulk": dict(n_perts=150, n_genes=1000, per_pert=2, n_ctrl=10),
            "single_cell": dict(n_perts=30, n_genes=500, per_pert=20, n_ctrl=200),
        }
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in scen.items():
            d = os.path.join(tmp, name)
            os.makedirs(d)
            make_inputs(d, **kw)
            for profile in ("vcc", "full"):
                ce = run_child("cell-eval", profile, d)
                sp_ = run_child("simpert", profile, d)
                raw = run_child("simpert-counts", profile, d)
                maxdiff, nan_ok, n, worst = compare(d, profile, "simpert")
                maxdiff_raw, nan_ok_raw, _, _ = compare(d, profile, "simpert-counts")
                speed = ce["time_s"] / sp_["time_s"]
                speed_cpu = ce["cpu_s"] / sp_["cpu_s"]
                mem = sp_["peak_mb"] / max(ce["peak_mb"], 1e-9)
                print(f"{name:11s} {profile:4s}  cell-eval {ce['time_s']:7.2f} s (cpu {ce['cpu_s']:7.2f}) "
                      f"{ce['peak_mb']:6.0f} MB | simpert {sp_['time_s']:6.2f} s (cpu {sp_['cpu_s']:6.2f}) "
                      f"{sp_['peak_mb']:6.0f} MB | speed-up {speed:5.1f}x (cpu {speed_cpu:5.1f}x), memory "
                      f"{mem:4.2f}x of cell-eval's | from counts {raw['time_s']:6.2f} s {raw['peak_mb']:6.0f} MB "
                      f"({ce['time_s'] / raw['time_s']:.1f}x) | {n} values, max |diff| {maxdiff:.1e} ({worst}) "
                      f"(counts {maxdiff_raw:.1e}), NaN pattern {'same' if nan_ok and nan_ok_raw else 'DIFFERENT'}",
                      flush=True)
                key = f"{name}_{profile}"
                result[f"{key}_speedup"] = round(speed, 2)
                result[f"{key}_cpu_speedup"] = round(speed_cpu, 2)
                result[f"{key}_mem_vs_celleval"] = round(mem, 2)
                result[f"{key}_counts_speedup"] = round(ce["time_s"] / raw["time_s"], 2)
                result[f"{key}_maxdiff"] = f"{max(maxdiff, maxdiff_raw):.1e}"
            ce2 = run_child("cell-eval2", "vcc2026", d)
            s26 = run_child("simpert", "vcc2026", d)
            maxdiff, nan_ok, n, worst = compare(d, "vcc2026", "simpert", ref="cell-eval2")
            speed, speed_cpu = ce2["time_s"] / s26["time_s"], ce2["cpu_s"] / s26["cpu_s"]
            mem = s26["peak_mb"] / max(ce2["peak_mb"], 1e-9)
            print(f"{name:11s} vcc2026  cell-eval2 {ce2['time_s']:7.2f} s (cpu {ce2['cpu_s']:7.2f}) "
                  f"{ce2['peak_mb']:6.0f} MB | simpert {s26['time_s']:6.2f} s (cpu {s26['cpu_s']:6.2f}) "
                  f"{s26['peak_mb']:6.0f} MB | speed-up {speed:5.1f}x (cpu {speed_cpu:5.1f}x), memory "
                  f"{mem:4.2f}x of cell-eval2's | {n} values, max |diff| {maxdiff:.1e} ({worst}), "
                  f"undefined values {'same' if nan_ok else 'DIFFERENT'}", flush=True)
            key = f"{name}_vcc2026"
            result[f"{key}_speedup"] = round(speed, 2)
            result[f"{key}_cpu_speedup"] = round(speed_cpu, 2)
            result[f"{key}_mem_vs_celleval2"] = round(mem, 2)
            result[f"{key}_maxdiff"] = f"{maxdiff:.1e}"
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
