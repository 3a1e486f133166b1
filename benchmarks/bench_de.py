"""Benchmark of the native DESeq2 engine against PyDESeq2 and R DESeq2, then at full scale.

Part 1 (peers): 50 perturbations x 3 replicates + 12 control replicates x 2,000 genes
(negative binomial counts, fixed seed). Each engine fits ONE model with the full perturbation
factor and reports every perturbation against the control (R: ``DESeq()`` then ``results()``
per contrast; PyDESeq2: ``DeseqDataSet.deseq2()`` then ``DeseqStats`` per contrast; R's
library load is done before timing). Parity figures of native against each peer: Pearson r
and max |difference| of log2FC for base mean >= 10, median relative difference of the final
dispersions, agreement of padj < 0.05 calls.

Part 2: the native engine alone at full scale, 2,000 perturbations x 3 replicates + 12
controls x 8,000 genes: wall time and peak resident memory.

Covariates: both parts also fit ``~ replicate + perturbation`` on the same counts (samples
carry a replicate label 1-3; the controls 4 of each), natively and, in part 1, with R
DESeq2. Reported: the covariate fit's time, its ratio to the single-factor fit (native) and
R's time over native's on the 50-perturbation design, with parity figures against R.

``--quick``: 10 perturbations x 3 + 6 controls x 500 genes, and 200 x 3 + 12 x 2,000 genes for
part 2. ``--covariates-only``: only the covariate fits (for a full-size run on a loaded
machine). Ends with one line ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simpert.de import DEDataset, deseq  # noqa: E402


def simulate(n_pert: int, n_rep: int, n_ctrl: int, n_genes: int, seed: int = 0) -> DEDataset:
    """Negative binomial pseudobulk counts with sparse effects, as a DEDataset."""
    rng = np.random.default_rng(seed)
    labels = np.array(["control"] * n_ctrl + [f"P{k:04d}" for k in range(n_pert) for _ in range(n_rep)])
    m = labels.size
    mu0 = np.exp(rng.normal(np.log(80), 1.5, n_genes))
    disp = 0.04 + 1.0 / mu0
    sf = np.exp(rng.normal(0, 0.2, m))
    codes = np.unique(labels, return_inverse=True)[1]
    effects = np.where(rng.random((n_pert + 1, n_genes)) < 0.05, rng.normal(0, 1.0, (n_pert + 1, n_genes)), 0.0)
    effects[0] = 0.0  # "control" sorts first
    size = 1.0 / disp
    y = np.empty((m, n_genes), dtype=np.int64)
    for s in range(0, m, 256):  # blocks of samples keep memory flat
        mu = mu0[None, :] * 2.0 ** effects[codes[s:s + 256]] * sf[s:s + 256, None]
        y[s:s + 256] = rng.negative_binomial(size[None, :], size[None, :] / (size[None, :] + mu))
    obs = pd.DataFrame({"perturbation": labels}, index=[f"s{i}" for i in range(m)])
    return DEDataset.from_arrays(y, obs, genes=[f"g{i}" for i in range(n_genes)])


def with_replicates(ds: DEDataset, n_rep: int = 3) -> DEDataset:
    """The same counts with a replicate label per sample and design ``~ replicate + perturbation``."""
    obs = pd.DataFrame({"perturbation": [ds.levels[i] for i in ds.level_of_sample],
                        "replicate": [f"rep{i % n_rep + 1}" for i in range(ds.n_samples)]}, index=ds.samples)
    return DEDataset.from_arrays(ds.counts, obs, design="~ replicate + perturbation", genes=ds.genes)


def parity(a, b) -> dict:
    """Parity figures of results ``a`` against ``b`` (same dataset)."""
    x, y = a.matrices["log2fc"], b.matrices["log2fc"]
    big = (b.base_mean.to_numpy() >= 10)[None, :] & np.isfinite(x) & np.isfinite(y)
    da, db = a.dispersions["final"].to_numpy(), b.dispersions["final"].to_numpy()
    ok = np.isfinite(da) & np.isfinite(db)
    return {
        "lfc_r": float(np.corrcoef(x[big], y[big])[0, 1]),
        "lfc_maxdiff": float(np.max(np.abs(x[big] - y[big]))),
        "disp_medrel": float(np.median(np.abs(da[ok] / db[ok] - 1))),
        "padj_agree": float(np.mean((a.matrices["padj"] < 0.05) == (b.matrices["padj"] < 0.05))),
    }


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (under a minute without peers' load)")
    ap.add_argument("--skip-peers", action="store_true", help="native only")
    ap.add_argument("--n-jobs", type=int, default=1, help="threads for the native engine")
    ap.add_argument("--covariates-only", action="store_true",
                    help="only the ~ replicate + perturbation fits (native and R)")
    args = ap.parse_args(argv)
    single = not args.covariates_only
    peer_size = (10, 3, 6, 500) if args.quick else (50, 3, 12, 2000)
    full_size = (200, 3, 12, 2000) if args.quick else (2000, 3, 12, 8000)
    result = {}

    ds = simulate(*peer_size, seed=1)
    print(f"part 1: {peer_size[0]} perturbations x {peer_size[1]} + {peer_size[2]} controls x {peer_size[3]} genes")
    if single:
        nat, t_nat = timed(lambda: deseq(ds, n_jobs=args.n_jobs))
        print(f"  native   {t_nat:8.2f} s")
        result["native_s"] = round(t_nat, 3)
    dsc = with_replicates(ds)
    nat_c, t_nat_c = timed(lambda: deseq(dsc, n_jobs=args.n_jobs))
    print(f"  native, ~ replicate + perturbation {t_nat_c:8.2f} s" +
          (f"   ratio to one factor {t_nat_c / t_nat:5.2f}x" if single else ""))
    result["cov_native_s"] = round(t_nat_c, 3)
    if single:
        result["cov_ratio_to_single"] = round(t_nat_c / t_nat, 2)
    if not args.skip_peers:
        try:
            import rpy2.robjects as ro

            ro.r("suppressPackageStartupMessages(library(DESeq2))")  # library load not timed
            r_c, t_r_c = timed(lambda: deseq(dsc, backend="r"))
            p = parity(nat_c, r_c)
            print(f"  R DESeq2, ~ replicate + perturbation {t_r_c:8.2f} s   ratio {t_r_c / t_nat_c:7.1f}x   "
                  "parity vs R: " + "  ".join(f"{k}={v:.6g}" for k, v in p.items()))
            result.update({"cov_r_s": round(t_r_c, 3), "cov_speedup_vs_r": round(t_r_c / t_nat_c, 1),
                           **{f"cov_r_{k}": round(v, 6) for k, v in p.items()}})
        except Exception as err:  # pragma: no cover - environment dependent
            print(f"  R DESeq2 unavailable: {err}")
    if not args.skip_peers and single:
        try:
            from simpert.de._rdeseq2 import deseq_r  # noqa: F401
            import rpy2.robjects as ro

            ro.r("suppressPackageStartupMessages(library(DESeq2))")  # library load not timed
            r_res, t_r = timed(lambda: deseq(ds, backend="r"))
            p = parity(nat, r_res)
            print(f"  R DESeq2 {t_r:8.2f} s   ratio {t_r / t_nat:7.1f}x   parity vs R: " +
                  "  ".join(f"{k}={v:.6g}" for k, v in p.items()))
            result.update({"r_s": round(t_r, 3), "speedup_vs_r": round(t_r / t_nat, 1),
                           **{f"r_{k}": round(v, 6) for k, v in p.items()}})
        except Exception as err:  # pragma: no cover - environment dependent
            print(f"  R DESeq2 unavailable: {err}")
        try:
            py_res, t_py = timed(lambda: deseq(ds, backend="pydeseq2", n_jobs=1))
            p = parity(nat, py_res)
            print(f"  PyDESeq2 {t_py:8.2f} s   ratio {t_py / t_nat:7.1f}x   parity vs PyDESeq2: " +
                  "  ".join(f"{k}={v:.6g}" for k, v in p.items()))
            result.update({"pydeseq2_s": round(t_py, 3), "speedup_vs_pydeseq2": round(t_py / t_nat, 1),
                           **{f"py_{k}": round(v, 6) for k, v in p.items()}})
        except Exception as err:  # pragma: no cover
            print(f"  PyDESeq2 unavailable: {err}")

    print(f"part 2: {full_size[0]} perturbations x {full_size[1]} + {full_size[2]} controls x {full_size[3]} genes")
    big = simulate(*full_size, seed=2)
    cells = big.counts.size
    if single:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        res, t_full = timed(lambda: deseq(big, n_jobs=args.n_jobs))
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        n_de = int(np.sum(res.matrices["padj"] < 0.1))
        print(f"  native   {t_full:8.2f} s   peak RSS {rss1:.0f} MB (before: {rss0:.0f} MB)   "
              f"{cells / 1e6:.0f}M counts   DE calls {n_de}")
        result.update({"full_s": round(t_full, 2), "full_peak_rss_mb": round(rss1),
                       "full_counts_m": round(cells / 1e6), "full_goal_120s": t_full <= 120})
        del res
    bigc = with_replicates(big)
    res_c, t_full_c = timed(lambda: deseq(bigc, n_jobs=args.n_jobs))
    rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_de_c = int(np.sum(res_c.matrices["padj"] < 0.1))
    print(f"  native, ~ replicate + perturbation {t_full_c:8.2f} s   peak RSS {rss2:.0f} MB   DE calls {n_de_c}" +
          (f"   ratio to one factor {t_full_c / t_full:5.2f}x" if single else ""))
    result.update({"cov_full_s": round(t_full_c, 2), "cov_full_peak_rss_mb": round(rss2)})
    if single:
        result["cov_full_ratio_to_single"] = round(t_full_c / t_full, 2)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
