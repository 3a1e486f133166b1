"""Write the count tables that tests/golden/make_golden.R fits with R DESeq2.

Run from the repository root: ``python tests/golden/make_inputs.py tests/golden``. Counts are
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
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def simulate(levels: dict, n_genes: int, rng, *, p_de=0.1, n_zero=0, outlier_frac=0.0):
    names, labels = [], []
    for lv, n in levels.items():
        for r in range(n):
            names.append(f"{lv}_r{r}")
            labels.append(lv)
    labels = np.array(labels)
    m = len(labels)
    mu0 = np.exp(rng.normal(np.log(60), 1.6, n_genes))
    disp = 0.05 + 1.0 / mu0
    sf = np.exp(rng.normal(0, 0.25, m))
    lfc = {lv: np.where(rng.random(n_genes) < p_de, rng.normal(0, 1.2, n_genes), 0.0) for lv in levels}
    lfc["control"] = np.zeros(n_genes)
    mu = np.stack([mu0 * 2.0 ** lfc[lv] * s for lv, s in zip(labels, sf)], axis=1)
    size = 1.0 / disp[:, None]
    y = rng.negative_binomial(size, size / (size + mu)).astype(np.int64)
    if n_zero:
        y[rng.choice(n_genes, n_zero, replace=False)] = 0
    if outlier_frac:
        rows = rng.choice(n_genes, int(outlier_frac * n_genes), replace=False)
        cols = rng.integers(0, m, rows.size)
        y[rows, cols] = np.maximum(y[rows, cols], 5) * rng.integers(20, 61, rows.size)
    genes = [f"gene{i:04d}" for i in range(n_genes)]
    counts = pd.DataFrame(y, index=pd.Index(genes, name="gene"), columns=names)
    coldata = pd.DataFrame({"sample": names, "perturbation": labels})
    return counts, coldata


DESIGNS = {
    "two_groups": dict(levels={"control": 4, "P1": 4}, n_genes=800, seed=101),
    "screen20": dict(levels={"control": 6, **{f"P{i:02d}": 3 for i in range(1, 21)}}, n_genes=600, seed=202,
                     n_zero=5),
    "outliers": dict(levels={"control": 8, "P1": 8, "P2": 8, "P3": 3}, n_genes=600, seed=303,
                     outlier_frac=0.04),
    "small_df": dict(levels={"control": 3, "P1": 2}, n_genes=500, seed=404),
}


def main(out: str) -> None:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in DESIGNS.items():
        spec = dict(spec)
        rng = np.random.default_rng(spec.pop("seed"))
        counts, coldata = simulate(spec.pop("levels"), spec.pop("n_genes"), rng, **spec)
        counts.to_csv(out_dir / f"{name}_counts.csv")
        coldata.to_csv(out_dir / f"{name}_coldata.csv", index=False)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent))
