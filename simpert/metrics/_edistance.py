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

from ._registry import Metric, register

__all__ = ["mean_pairwise_distance", "edistances", "pearson_edistance"]


def _dense(X):
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


def mean_pairwise_distance(X, Y=None, *, chunk_size: int = 1024) -> float:
    """Mean Euclidean distance over all pairs of rows of X and Y (Y = X: diagonal included)."""
    same = Y is None
    Y = X if same else Y
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
    """E-distance of every perturbation's cells to the control cells (NaN if a group is empty)."""
    X = sp.csr_matrix(cells.X) if sp.issparse(cells.X) else np.asarray(cells.X)
    ctrl = X[np.flatnonzero(cells.group == -1)]
    if ctrl.shape[0] == 0:
        raise ValueError("E-distance needs control cells; none were found")
    s_c = mean_pairwise_distance(ctrl, chunk_size=chunk_size)
    out = np.full(n_perturbations, np.nan)
    for p in range(n_perturbations):
        xp = X[np.flatnonzero(cells.group == p)]
        if xp.shape[0] == 0:
            continue
        out[p] = 2 * mean_pairwise_distance(xp, ctrl, chunk_size=chunk_size) \
            - mean_pairwise_distance(xp, chunk_size=chunk_size) - s_c
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
