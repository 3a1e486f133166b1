"""E-distance correlation (cell-eval's ``pearson_edistance``).

For each test perturbation p, the energy distance between its cells X and the control
cells C is ``2 mean d(x, c) - mean d(x, x') - mean d(c, c')`` with Euclidean distances
on log-normalised expression; the within-group means include the zero diagonal, as
cell-eval does (pertpy averages over distinct pairs instead). The metric is the Pearson
correlation across perturbations of the observed and predicted E-distances: one value
per set of perturbations, repeated for every perturbation. Pairwise distances are
computed in blocks, so memory stays bounded for large control groups.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import cdist

from ._registry import Metric, register

__all__ = ["mean_pairwise_distance", "edistances", "pearson_edistance"]


def _dense(X):
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


def mean_pairwise_distance(X, Y=None, *, chunk_size: int = 1024) -> float:
    """Mean Euclidean distance over all pairs of rows of X and Y (Y = X: diagonal included)."""
    same = Y is None
    Y = X if same else Y
    n_ops = X.shape[0] * Y.shape[0] * X.shape[1]
    if n_ops <= 5e7:  # small blocks: exact C loop, no BLAS start-up cost
        return float(cdist(_dense(X), _dense(Y), "euclidean").mean())
    Yd = _dense(Y)
    y_sq = np.einsum("ij,ij->i", Yd, Yd)
    total = 0.0
    for s in range(0, X.shape[0], chunk_size):
        a = _dense(X[s:s + chunk_size])
        a_sq = np.einsum("ij,ij->i", a, a)
        d2 = a_sq[:, None] + y_sq[None, :] - 2.0 * (a @ Yd.T)
        np.maximum(d2, 0.0, out=d2)
        if same:
            d2[np.arange(a.shape[0]), np.arange(s, s + a.shape[0])] = 0.0
        total += np.sqrt(d2).sum()
    return total / (X.shape[0] * Y.shape[0])


def edistances(cells, n_perturbations: int, *, chunk_size: int = 1024) -> np.ndarray:
    """E-distance of every perturbation's cells to the control cells (NaN if a group is empty).

    The control cells are densified once; distances from all perturbed cells to the
    controls are computed in blocks of ``chunk_size`` cells (one matrix product each) and
    averaged per perturbation; within-perturbation distances are computed group by group.
    """
    X = sp.csr_matrix(cells.X) if sp.issparse(cells.X) else np.asarray(cells.X)
    group = np.asarray(cells.group)
    C = _dense(X[np.flatnonzero(group == -1)])
    if C.shape[0] == 0:
        raise ValueError("E-distance needs control cells; none were found")
    s_c = mean_pairwise_distance(C, chunk_size=chunk_size)
    c_sq = np.einsum("ij,ij->i", C, C)
    rows = np.flatnonzero((group >= 0) & (group < n_perturbations))
    to_ctrl = np.zeros(n_perturbations)
    for s in range(0, rows.size, chunk_size):
        r = rows[s:s + chunk_size]
        a = _dense(X[r])
        d2 = np.einsum("ij,ij->i", a, a)[:, None] + c_sq[None, :] - 2.0 * (a @ C.T)
        np.maximum(d2, 0.0, out=d2)
        to_ctrl += np.bincount(group[r], weights=np.sqrt(d2).mean(axis=1), minlength=n_perturbations)
    sizes = np.bincount(group[rows], minlength=n_perturbations)
    out = np.full(n_perturbations, np.nan)
    order = rows[np.argsort(group[rows], kind="stable")]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    for p in np.flatnonzero(sizes > 0):
        xp = X[order[bounds[p]:bounds[p + 1]]]
        out[p] = 2 * to_ctrl[p] / sizes[p] - mean_pairwise_distance(xp, chunk_size=chunk_size) - s_c
    return out


def pearson_edistance(inp) -> np.ndarray:
    """Pearson correlation of observed and predicted E-distances (repeated P times)."""
    if inp.real_cells is None or inp.pred_cells is None:
        raise ValueError("pearson_edistance needs cells: predictions must carry .cells")
    P = inp.n_perturbations
    a = edistances(inp.real_cells, P)
    b = edistances(inp.pred_cells, P)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return np.full(P, np.nan)
    r = np.corrcoef(a[ok], b[ok])[0, 1]
    return np.full(P, r)


register(Metric("pearson_edistance", pearson_edistance, True, 1.0, frozenset({"cells"}),
                "Pearson correlation of observed and predicted E-distances to control", "cell-eval",
                per_set=True), overwrite=True)
