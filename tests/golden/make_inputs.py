"""Write the count tables that tests/golden/make_golden.R fits with R DESeq2.

Run from the repository root: ``python tests/golden/make_inputs.py tests/golden [design ...]``. Counts are
negative binomial draws (NumPy, fixed seed): gene means from a log-normal law, dispersion
trend ``0.05 + 1/mu``, log-normal size factors and sparse log fold changes. Each design
writes ``<name>_counts.csv`` (genes x samples) and ``<name>_coldata.csv`` (sample,
perturbation).

Designs
-------
two_groups : control and one perturbation, 4 samples each, 800 genes.
screen20 : 20 perturbations x 3 replicates + 6 controls, 600 genes (5 all-zero genes).
outliers : control, P1, P2 with 8 samples each and P3 with 3, 600 genes; 4% of genes get one
    count multiplied by 20-60 (outliers in the 8-sample levels are replaced and refitted,
    in P3 they make the p-values NA).
small_df : control 3, P1 2 samples (2 residual degrees of freedom: DESeq2's simulated
    prior-variance branch), 500 genes.
lowcount : control, P1, P2 with 5 samples each, 400 genes with means 0.1-5 (log-uniform):
    the parametric trend fails and R substitutes the local (locfit) trend; the minmu clamp
    of the GLM binds for most genes.
libsize10x : control, P1, P2 with 4 samples each, 500 genes, library sizes spread
    geometrically over a 10-fold range.
screen100 : 100 perturbations x 2 replicates + 10 controls, 300 genes (residual degrees of
    freedom 110: the prior variance lies above its 0.25 floor).
groups7743 : control 7, P1 7, P2 4, P3 3 samples, 400 genes with low-count genes (means
    0.3-3) and 5% of genes with one outlying count of 3-12 times the count (borderline
    Cook's distances; replacement in the 7-sample levels, NA p-values elsewhere).
allzero : control, P1, P2 with 3 samples each, 300 genes; 20 genes are zero in control and
    P1, 10 in control and P2, 10 in P1 and P2 (R's all-zero contrast rule) and 4 in every
    sample.
cov_replicate : ``~ replicate + perturbation``; control 21 samples (7 per replicate), P01 9
    (3 per replicate), 11 more perturbations x 3 replicates, 400 genes, replicate effects
    (sd 0.3 per gene and replicate), 3% of genes with one outlying count. R's Cook's cells are
    the distinct model-matrix rows: outliers in the 7-sample control cells are replaced, those
    in P01's 3-sample cells make p-values NA, single-sample cells are not looked at.
cov_numeric : ``~ quality + perturbation`` with a numeric covariate (centred, sd 1, effect
    sd 0.25 per gene); control 6, 10 perturbations x 3, 400 genes; every sample is its own
    cell, so R records no Cook's maxima.
cov_mixed : ``~ replicate + quality + perturbation``; control 9 (3 per replicate), 15
    perturbations x 3 replicates, 300 genes, low-count genes (25% with means 0.3-3).
meanfit : control and P1 with 3 samples each, 300 genes, fitted with ``fitType = "mean"``
    (``meanfit_options.csv``).
localfit : control and P1 with 4 samples each, 400 genes, fitted with ``fitType = "local"``.
spiky : control, P1, P2 with 3 samples each, 400 genes: 250 ordinary genes and 150 with
    sample-specific log-normal (sd 2) spikes on low means and size factors over a 30-fold
    range; the IRLS of some genes reaches its iteration cap (R refits them with optim).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def simulate(levels: dict, n_genes: int, rng, *, p_de=0.1, n_zero=0, outlier_frac=0.0, mean_range=None,
             sf_range=None, low_frac=0.0, low_range=(0.3, 3.0), outlier_mult=(20, 60), zero_groups=(), spiky=0):
    names, labels = [], []
    for lv, n in levels.items():
        for r in range(n):
            names.append(f"{lv}_r{r}")
            labels.append(lv)
    labels = np.array(labels)
    m = len(labels)
    if mean_range is None:
        mu0 = np.exp(rng.normal(np.log(60), 1.6, n_genes))
    else:
        mu0 = np.exp(rng.uniform(np.log(mean_range[0]), np.log(mean_range[1]), n_genes))
    if spiky:
        rows = np.arange(n_genes - spiky, n_genes)
        mu0[rows] = rng.exponential(1.0, spiky) + 0.05
        low = rng.random(n_genes) < low_frac
        mu0[low] = np.exp(rng.uniform(np.log(low_range[0]), np.log(low_range[1]), low.sum()))
    disp = 0.05 + 1.0 / mu0
    if sf_range is None:
        sf = np.exp(rng.normal(0, 0.25, m))
    else:
        sf = rng.permutation(np.geomspace(sf_range[0], sf_range[1], m))
    lfc = {lv: np.where(rng.random(n_genes) < p_de, rng.normal(0, 1.2, n_genes), 0.0) for lv in levels}
    lfc["control"] = np.zeros(n_genes)
    mu = np.stack([mu0 * 2.0 ** lfc[lv] * s for lv, s in zip(labels, sf)], axis=1)
    if spiky:
        mu[rows] *= np.exp(rng.normal(0.0, 2.0, (spiky, m)))
    size = 1.0 / disp[:, None]
    y = rng.negative_binomial(size, size / (size + mu)).astype(np.int64)
    if n_zero:
        y[rng.choice(n_genes, n_zero, replace=False)] = 0
    if outlier_frac:
        rows = rng.choice(n_genes, int(outlier_frac * n_genes), replace=False)
        cols = rng.integers(0, m, rows.size)
        y[rows, cols] = np.maximum(y[rows, cols], 5) * rng.integers(outlier_mult[0], outlier_mult[1] + 1,
                                                                   rows.size)
    free = np.setdiff1d(np.arange(n_genes), np.flatnonzero(y.sum(axis=1) == 0))
    for groups, k in zero_groups:
        rows = rng.choice(free, k, replace=False)
        free = np.setdiff1d(free, rows)
        cols = np.flatnonzero(np.isin(labels, groups))
        y[np.ix_(rows, cols)] = 0
    genes = [f"gene{i:04d}" for i in range(n_genes)]
    counts = pd.DataFrame(y, index=pd.Index(genes, name="gene"), columns=names)
    coldata = pd.DataFrame({"sample": names, "perturbation": labels})
    return counts, coldata


def simulate_covariates(levels: dict, n_genes: int, rng, *, n_rep=3, replicate=True, numeric=False,
                        rep_sd=0.3, num_sd=0.25, outlier_frac=0.0, low_frac=0.0, p_de=0.1):
    """Counts with replicate (factor) and / or numeric covariate effects on every gene."""
    names, labels, reps = [], [], []
    for lv, n in levels.items():
        for r in range(n):
            names.append(f"{lv}_r{r}")
            labels.append(lv)
            reps.append(f"rep{r % n_rep + 1}")
    labels, reps = np.array(labels), np.array(reps)
    m = len(labels)
    mu0 = np.exp(rng.normal(np.log(60), 1.6, n_genes))
    low = rng.random(n_genes) < low_frac
    mu0[low] = np.exp(rng.uniform(np.log(0.3), np.log(3.0), low.sum()))
    disp = 0.05 + 1.0 / mu0
    sf = np.exp(rng.normal(0, 0.25, m))
    lfc = {lv: np.where(rng.random(n_genes) < p_de, rng.normal(0, 1.2, n_genes), 0.0) for lv in levels}
    lfc["control"] = np.zeros(n_genes)
    log_mu = np.log(mu0)[:, None] + np.log(2.0) * np.stack([lfc[lv] for lv in labels], axis=1) + np.log(sf)[None, :]
    coldata = pd.DataFrame({"sample": names, "perturbation": labels})
    if replicate:
        rep_eff = {r: rng.normal(0, rep_sd, n_genes) for r in sorted(set(reps))}
        log_mu += np.stack([rep_eff[r] for r in reps], axis=1)
        coldata.insert(1, "replicate", reps)
    if numeric:
        q = np.round(rng.normal(0, 1, m), 3)
        log_mu += rng.normal(0, num_sd, n_genes)[:, None] * q[None, :]
        coldata.insert(len(coldata.columns) - 1, "quality", q)
    size = 1.0 / disp[:, None]
    mu = np.exp(log_mu)
    y = rng.negative_binomial(size, size / (size + mu)).astype(np.int64)
    if outlier_frac:
        rows = rng.choice(n_genes, int(outlier_frac * n_genes), replace=False)
        cols = rng.integers(0, m, rows.size)
        y[rows, cols] = np.maximum(y[rows, cols], 5) * rng.integers(20, 61, rows.size)
    genes = [f"gene{i:04d}" for i in range(n_genes)]
    return pd.DataFrame(y, index=pd.Index(genes, name="gene"), columns=names), coldata


#: designs with covariates: (simulate_covariates arguments, DESeq2 design formula)
COVARIATE_DESIGNS = {
    "cov_replicate": (dict(levels={"control": 21, "P01": 9, **{f"P{i:02d}": 3 for i in range(2, 13)}}, n_genes=400,
                           seed=1313, outlier_frac=0.03), "~ replicate + perturbation"),
    "cov_numeric": (dict(levels={"control": 6, **{f"P{i:02d}": 3 for i in range(1, 11)}}, n_genes=400,
                         seed=1414, replicate=False, numeric=True), "~ quality + perturbation"),
    "cov_mixed": (dict(levels={"control": 9, **{f"P{i:02d}": 3 for i in range(1, 16)}}, n_genes=300,
                       seed=1515, numeric=True, low_frac=0.25), "~ replicate + quality + perturbation"),
}

DESIGNS = {
    "two_groups": dict(levels={"control": 4, "P1": 4}, n_genes=800, seed=101),
    "screen20": dict(levels={"control": 6, **{f"P{i:02d}": 3 for i in range(1, 21)}}, n_genes=600, seed=202,
                     n_zero=5),
    "outliers": dict(levels={"control": 8, "P1": 8, "P2": 8, "P3": 3}, n_genes=600, seed=303,
                     outlier_frac=0.04),
    "small_df": dict(levels={"control": 3, "P1": 2}, n_genes=500, seed=404),
    "lowcount": dict(levels={"control": 5, "P1": 5, "P2": 5}, n_genes=400, seed=505, mean_range=(0.1, 5.0),
                     p_de=0.2),
    "libsize10x": dict(levels={"control": 4, "P1": 4, "P2": 4}, n_genes=500, seed=606, sf_range=(0.3, 3.0)),
    "screen100": dict(levels={"control": 10, **{f"P{i:03d}": 2 for i in range(1, 101)}}, n_genes=300,
                      seed=707, n_zero=3),
    "groups7743": dict(levels={"control": 7, "P1": 7, "P2": 4, "P3": 3}, n_genes=400, seed=808,
                       outlier_frac=0.05, outlier_mult=(3, 12), low_frac=0.25),
    "allzero": dict(levels={"control": 3, "P1": 3, "P2": 3}, n_genes=300, seed=909, n_zero=4,
                    zero_groups=[(("control", "P1"), 20), (("control", "P2"), 10), (("P1", "P2"), 10)]),
    "spiky": dict(levels={"control": 3, "P1": 3, "P2": 3}, n_genes=400, seed=1212, sf_range=(0.18, 5.5), spiky=150),
    "meanfit": dict(levels={"control": 3, "P1": 3}, n_genes=300, seed=1010),
    "localfit": dict(levels={"control": 4, "P1": 4}, n_genes=400, seed=1111),
}

#: DESeq() arguments other than the defaults, written to ``<name>_options.csv``.
OPTIONS = {"meanfit": {"fitType": "mean"}, "localfit": {"fitType": "local"}}


def main(out: str, names=None) -> None:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in DESIGNS.items():
        if names and name not in names:
            continue
        spec = dict(spec)
        rng = np.random.default_rng(spec.pop("seed"))
        counts, coldata = simulate(spec.pop("levels"), spec.pop("n_genes"), rng, **spec)
        counts.to_csv(out_dir / f"{name}_counts.csv")
        coldata.to_csv(out_dir / f"{name}_coldata.csv", index=False)
        if name in OPTIONS:
            pd.DataFrame({"key": list(OPTIONS[name]), "value": list(OPTIONS[name].values())}).to_csv(
                out_dir / f"{name}_options.csv", index=False)
    for name, (spec, formula) in COVARIATE_DESIGNS.items():
        if names and name not in names:
            continue
        spec = dict(spec)
        rng = np.random.default_rng(spec.pop("seed"))
        counts, coldata = simulate_covariates(spec.pop("levels"), spec.pop("n_genes"), rng, **spec)
        counts.to_csv(out_dir / f"{name}_counts.csv")
        coldata.to_csv(out_dir / f"{name}_coldata.csv", index=False)
        pd.DataFrame({"key": ["design"], "value": [formula]}).to_csv(out_dir / f"{name}_options.csv", index=False)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent), sys.argv[2:])
