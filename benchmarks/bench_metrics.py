"""Benchmark: simpert.metrics against cell-eval 0.8.x on the same inputs, in one run.

Scenarios: (a) a pseudobulk screen (1,000 perturbations x 8,000 genes, 2 samples per
perturbation, 20 control samples) and (b) a single-cell screen (200 perturbations x
40 cells x 2,000 genes, 1,000 control cells). Profiles: cell-eval's "vcc" (mae,
discrimination_score_l1, overlap_at_N) and "full" minus the metrics simpert does not
implement (clustering_agreement, de_spearman_sig, de_nsig_counts). Both tools get the
same DE tables (drawn from the simulated truth), so DE time is not measured.

Both tools run with one BLAS thread. Each (tool, scenario, profile) runs in its own process that reads the inputs from disk,
so peak memory is the process's peak resident set size above its level once the inputs
are loaded. cell-eval is timed from its input (log-normalised AnnData), simpert from its
input (counts; normalisation is included in its time). Values of every shared metric are
compared (max |difference| over perturbations). ``--quick`` runs a smaller version.
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


def _peak_mb() -> float:
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


def child(tool, profile, d):
    import anndata as ad
    import polars as pl

    real = ad.read_h5ad(os.path.join(d, "real.h5ad"))
    pred = ad.read_h5ad(os.path.join(d, "pred.h5ad"))
    de_real = pl.read_parquet(os.path.join(d, "de_real.parquet"))
    de_pred = pl.read_parquet(os.path.join(d, "de_pred.parquet"))
    names = VCC if profile == "vcc" else FULL
    if tool == "cell-eval":
        import scipy.sparse as sp
        from cell_eval import MetricsEvaluator

        from simpert._profiles import lognormalize

        for a in (real, pred):  # cell-eval's expected input: log-normalised expression
            a.X = sp.csr_matrix(lognormalize(a.X))
        import gc
        gc.collect()
        base = _rss_mb()
        t0 = time.perf_counter()
        ev = MetricsEvaluator(adata_pred=pred, adata_real=real, de_pred=de_pred, de_real=de_real,
                              control_pert="control", pert_col="perturbation", num_threads=1,
                              outdir=os.path.join(d, "ce_out"))
        res, _ = ev.compute(profile=profile, skip_metrics=CE_SKIP, write_csv=False)
        elapsed = time.perf_counter() - t0
        tidy = res.to_pandas().melt(id_vars="perturbation", var_name="metric", value_name="value")
    else:
        import gc

        from simpert._profiles import group_profiles
        from simpert.metrics import score
        from simpert.predict._types import Prediction, Predictions, Split

        gc.collect()
        base = _rss_mb()
        t0 = time.perf_counter()
        test = tuple(str(p) for p in real.obs["perturbation"].cat.categories[1:])
        prof = group_profiles(pred)
        prof.index = prof.index.astype(str)
        preds = Predictions([Prediction("model", prof.loc[list(test)], prof.loc["control"], pred)])
        split = Split(train=(), test=test)
        tidy = score(preds, real, split, metrics=names, de={"real": de_real, "model": de_pred})
        elapsed = time.perf_counter() - t0
    tidy = tidy[tidy["metric"].isin(names)]
    tidy[["perturbation", "metric", "value"]].to_csv(os.path.join(d, f"{tool}_{profile}.csv"), index=False)
    print(json.dumps({"time_s": elapsed, "peak_mb": _peak_mb() - base}))


def run_child(tool, profile, d):
    out = subprocess.run([sys.executable, __file__, "--child", tool, profile, d], capture_output=True,
                         text=True, env={**os.environ, **THREADS, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
    if out.returncode != 0:
        raise RuntimeError(f"{tool} {profile} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(d, profile):
    import pandas as pd

    a = pd.read_csv(os.path.join(d, f"cell-eval_{profile}.csv")).set_index(["perturbation", "metric"])["value"]
    b = pd.read_csv(os.path.join(d, f"simpert_{profile}.csv")).set_index(["perturbation", "metric"])["value"]
    both = a.index.intersection(b.index)
    x, y = a.loc[both].to_numpy(float), b.loc[both].to_numpy(float)
    nan_agree = np.isnan(x) == np.isnan(y)
    diff = np.abs(x - y)
    return float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0, bool(nan_agree.all()), len(both)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small inputs (under a minute)")
    ap.add_argument("--child", nargs=3, metavar=("TOOL", "PROFILE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
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
                maxdiff, nan_ok, n = compare(d, profile)
                speed = ce["time_s"] / sp_["time_s"]
                mem = ce["peak_mb"] / max(sp_["peak_mb"], 1e-9)
                print(f"{name:11s} {profile:4s}  cell-eval {ce['time_s']:8.2f} s {ce['peak_mb']:8.0f} MB | "
                      f"simpert {sp_['time_s']:7.2f} s {sp_['peak_mb']:7.0f} MB | speed-up {speed:6.1f}x "
                      f"memory ratio {mem:5.1f}x | values: {n} compared, max |diff| {maxdiff:.2e}, "
                      f"NaN pattern {'same' if nan_ok else 'DIFFERENT'}", flush=True)
                key = f"{name}_{profile}"
                result[f"{key}_speedup"] = round(speed, 2)
                result[f"{key}_mem_ratio"] = round(mem, 2)
                result[f"{key}_maxdiff"] = f"{maxdiff:.1e}"
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
