"""Small simulated screens for the metrics tests (numpy NB counts, no simulator needed)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from simpert._profiles import group_profiles
from simpert.predict._types import Prediction


def nb_screen(n_genes=60, n_perts=8, cells=40, n_ctrl=150, effect=1.0, seed=0, named_by_target=True,
              control="control", shift=0.0, noise_seed=None):
    """Cells x genes NB counts; perturbation k knocks down gene k and changes a few others.

    Returns the AnnData (counts, obs perturbation/target, truth in uns) and the true
    log mean matrix (for building predictions of known quality).
    """
    rng = np.random.default_rng(seed)
    genes = np.array([f"g{i:03d}" for i in range(n_genes)])
    base = rng.gamma(2.0, 2.0, size=n_genes) + 0.5
    targets = genes[rng.choice(n_genes, n_perts, replace=False)]
    perts = targets if named_by_target else np.array([f"p{i:02d}" for i in range(n_perts)])
    lfc = np.zeros((n_perts, n_genes))
    for k in range(n_perts):
        hit = rng.random(n_genes) < 0.15
        lfc[k, hit] = rng.normal(0, effect, hit.sum())
        lfc[k, genes == targets[k]] = -2.0
    lfc += shift * rng.normal(0, 1, n_genes)[None, :] * (shift != 0)
    rows, labels = [], []
    rng = rng if noise_seed is None else np.random.default_rng(noise_seed)
    sizes = rng.integers(cells // 2, cells * 3 // 2, size=n_perts)
    for k in range(n_perts):
        mu = base * 2.0 ** lfc[k]
        lib = rng.lognormal(0, 0.2, size=(sizes[k], 1))
        rows.append(rng.negative_binomial(5, 5 / (5 + mu * lib)))
        labels += [perts[k]] * sizes[k]
    lib = rng.lognormal(0, 0.2, size=(n_ctrl, 1))
    rows.append(rng.negative_binomial(5, 5 / (5 + base * lib)))
    labels += [control] * n_ctrl
    X = sp.csr_matrix(np.vstack(rows).astype(np.int64))
    cats = [control] + list(perts)
    obs = pd.DataFrame({"perturbation": pd.Categorical(labels, categories=cats)},
                       index=[f"c{i}" for i in range(len(labels))])
    tmap = dict(zip(perts, targets))
    obs["target"] = [tmap.get(p, "") for p in labels]
    obs["is_control"] = obs["perturbation"] == control
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))
    adata.uns["simpert"] = {"control": control, "truth": {
        "perturbations": np.asarray(perts, dtype=str), "targets": np.asarray(targets, dtype=str),
        "genes": genes, "log2fc": lfc}}
    return adata, base, lfc


def prediction_from_cells(name, cells, test, control="control"):
    """A Prediction whose profiles and control come from predicted cells (cell-eval style)."""
    prof = group_profiles(cells)
    prof.index = prof.index.astype(str)
    return Prediction(name, prof.loc[list(test)], prof.loc[control], cells)


def profile_prediction(name, adata, matrix, test, control="control"):
    """A Prediction from a (P x G) matrix of profiles and the observed control profile."""
    prof = group_profiles(adata)
    prof.index = prof.index.astype(str)
    return Prediction(name, pd.DataFrame(matrix, index=list(test), columns=adata.var_names.copy()),
                      prof.loc[control])


def observed(adata):
    prof = group_profiles(adata)
    prof.index = prof.index.astype(str)
    return prof
