"""Weighted metrics of Mejia et al. (arXiv 2506.22641) and Miller et al. (bioRxiv 2025.10.20.683304).

Gene weights come from how strongly each gene separates a perturbation from the other
perturbed cells: ``s_pg`` is the t-statistic of perturbation p against the rest of the
perturbed cells (scanpy's ``rank_genes_groups(method="t-test_overestim_var",
reference="rest")`` with controls removed; computed here in one vectorised pass, see
:func:`t_statistics`), and ``w_pg = ((|s_pg| - min_g |s_pg|) / (max_g |s_pg| - min_g |s_pg|))^2``.

- wmse: ``sum_g (w_pg / sum_g w_pg) (q_pg - r_pg)^2`` on absolute expression.
- weighted_r2_delta: weighted R^2 (scikit-learn's ``r2_score`` with ``sample_weight``) of
  ``r_p - mu`` by ``q_p - mu``, mu the perturbed centroid: the unweighted mean of every
  perturbation's profile, the test perturbations included (native reference
  "centroid_all").
- r2_delta: the same without weights.
- mse_de / r2_delta_de: DE-restricted forms, over the top ``n_de`` (20) genes by
  ``|r_p - r_0|`` (unweighted).

Weight source (``score(weights=...)``): None (default) takes each metric's own convention,
which for wmse and weighted_r2_delta is the source's: "all" computes each test
perturbation's weights from its own observed cells against all other perturbed cells (the
held-out truth enters the metric, as in the source). The leakage-free variants are named
options: ``weights="train"`` uses only the training perturbations (each training
perturbation's weights against the other training perturbations, averaged into one vector
per gene) and ``reference="centroid"`` the centroid of the training perturbations. An
array gives external weights, shape (G,) or (P, G).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._registry import Metric, register
from ._stats import row_mean, row_r2
from ._systema import top_change_mask

__all__ = [
    "t_statistics",
    "mejia_weights",
    "wmse",
    "weighted_r2_delta",
    "r2_delta",
    "mse_de",
    "r2_delta_de",
]


def t_statistics(X, labels, groups) -> np.ndarray:
    """Welch t-statistics of each group against all other cells (scanpy "t-test_overestim_var").

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix, shape (n_cells, G)
        Log-normalised expression of the cells that form the comparison (controls
        already removed).
    labels : array of str, shape (n_cells,)
        Group of each cell.
    groups : sequence of str
        Groups to test (each against every other cell of ``X``).

    Returns
    -------
    ndarray, shape (len(groups), G)
        ``(mean_g - mean_rest) / sqrt(var_g / n_g + var_rest / n_g)`` with unbiased
        variances; the rest variance is divided by the group size (scanpy's
        over-estimation of the variance for small groups); NaN becomes 0, as in scanpy.
    """
    labels = np.asarray(labels).astype(str)
    groups = [str(g) for g in groups]
    n = labels.shape[0]
    code = pd.Index(groups).get_indexer(labels)
    inside = code >= 0
    ind = sp.csr_matrix(
        (np.ones(inside.sum()), (code[inside], np.flatnonzero(inside))), shape=(len(groups), n)
    )
    if sp.issparse(X):
        Xs = sp.csr_matrix(X, dtype=np.float64)
        X2 = Xs.multiply(Xs).tocsr()
        tot = np.asarray(Xs.sum(axis=0)).ravel()
        tot2 = np.asarray(X2.sum(axis=0)).ravel()
        s = np.asarray((ind @ Xs).todense())
        s2 = np.asarray((ind @ X2).todense())
    else:
        Xd = np.asarray(X, dtype=np.float64)
        tot = Xd.sum(axis=0)
        tot2 = np.einsum("ij,ij->j", Xd, Xd)
        s = ind @ Xd
        s2 = ind @ (Xd * Xd)
    ng = np.asarray(ind.sum(axis=1)).ravel()[:, None]
    nr = n - ng
    with np.errstate(invalid="ignore", divide="ignore"):
        mg = s / ng
        mr = (tot - s) / nr
        vg = (s2 - ng * mg**2) / (ng - 1)
        vr = ((tot2 - s2) - nr * mr**2) / (nr - 1)
        vg = np.maximum(vg, 0.0)
        vr = np.maximum(vr, 0.0)
        t = (mg - mr) / np.sqrt(vg / ng + vr / ng)
    t[np.isnan(t)] = 0.0
    return t


def mejia_weights(t: np.ndarray) -> np.ndarray:
    """Mejia et al.'s gene weights: min-max scaled squared ``|t|`` per row.

    ``w_g = ((|t_g| - min |t|) / (max |t| - min |t|))^2``; a row with no spread gets 0.

    Parameters
    ----------
    t : array-like, shape (G,) or (P, G)
        t-statistics of each perturbation against the rest of the perturbed cells.

    Returns
    -------
    ndarray, shape (P, G)
        Weights in [0, 1].
    """
    a = np.abs(np.atleast_2d(t))
    lo = a.min(axis=1, keepdims=True)
    hi = a.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = ((a - lo) / (hi - lo)) ** 2
    w[~np.isfinite(w)] = 0.0
    return w


def _weights(inp):
    if inp.weights is None:
        raise ValueError("this metric needs gene weights; pass weights='train', 'all' or an array to score()")
    w = np.broadcast_to(np.asarray(inp.weights, float), inp.real.shape)
    if inp.gene_mask is not None:
        w = w * inp.gene_mask
    return w


def wmse(inp) -> np.ndarray:
    """Weighted mean squared error of the profiles."""
    w = _weights(inp)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * (inp.pred - inp.real) ** 2).sum(axis=1) / w.sum(axis=1)


def weighted_r2_delta(inp) -> np.ndarray:
    """Weighted R^2 of the observed delta by the predicted delta."""
    return row_r2(inp.delta_real, inp.delta_pred, _weights(inp))


def r2_delta(inp) -> np.ndarray:
    """Unweighted R^2 of the observed delta by the predicted delta."""
    w = None if inp.gene_mask is None else inp.gene_mask.astype(float)
    return row_r2(inp.delta_real, inp.delta_pred, w)


def mse_de(inp) -> np.ndarray:
    """Mean squared error over the top-n genes by observed change from control."""
    return row_mean((inp.pred - inp.real) ** 2, top_change_mask(inp))


def r2_delta_de(inp) -> np.ndarray:
    """R^2 of the deltas over the top-n genes by observed change from control."""
    return row_r2(inp.delta_real, inp.delta_pred, top_change_mask(inp).astype(float))


_SRC = "Mejia/Miller"
register(Metric("wmse", wmse, False, 0.0, frozenset({"profiles", "train"}),
                "weighted mean squared error (t-statistic weights of each perturbation vs the rest)", _SRC,
                uses_weights=True, weights="all"),
         overwrite=True)
register(Metric("weighted_r2_delta", weighted_r2_delta, True, 1.0, frozenset({"profiles", "train"}),
                "weighted R^2 of deltas against the centroid of all perturbations", _SRC,
                reference="centroid_all", uses_weights=True, weights="all"), overwrite=True)
register(Metric("r2_delta", r2_delta, True, 1.0, frozenset({"profiles", "train"}),
                "R^2 of deltas against the centroid of all perturbations", _SRC, reference="centroid_all"),
         overwrite=True)
register(Metric("mse_de", mse_de, False, 0.0, frozenset({"profiles"}),
                "mean squared error over the top-20 genes by observed change", _SRC), overwrite=True)
register(Metric("r2_delta_de", r2_delta_de, True, 1.0, frozenset({"profiles", "train"}),
                "R^2 of deltas over the top-20 genes by observed change", _SRC,
                reference="centroid_all"), overwrite=True)
