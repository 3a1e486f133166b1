"""E-distance correlation (cell-eval's ``pearson_edistance``).

For each test perturbation p, the energy distance between its cells X and the control
cells C is ``2 mean d(x, c) - mean d(x, x') - mean d(c, c')`` with Euclidean distances
on log-normalised expression; the within-group means include the zero diagonal, as
cell-eval does (pertpy averages over distinct pairs instead). The metric is the Pearson
correlation across perturbations of the observed and predicted E-distances: one value
per set of perturbations, repeated for every perturbation. Pairwise distances are
computed in blocks, so memory stays bounded for large control groups. Follows cell-eval
0.8.2 ``cell_eval/metrics/_anndata.py`` (``edistance``).

Undefined cases give NaN with a warning saying why: fewer than two perturbations with
cells on both sides, or E-distances constant on one side up to rounding (their spread
at most 1e-9 times the mean distance to the controls; a constant prediction gives E-distances
that differ by about 1e-14, whose correlation cell-eval reports as a number although it
measures rounding only). Non-finite values in the cells raise a ValueError instead of
silently removing a perturbation.
"""

from __future__ import annotations

import warnings

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

    Parameters
    ----------
    cells : CellSet
    n_perturbations : int
    chunk_size : int, default 1024

    Returns
    -------
    ndarray, shape (n_perturbations,)
    """
    return _edistances(cells, n_perturbations, chunk_size=chunk_size)[0]


def _edistances(cells, n_perturbations: int, *, chunk_size: int = 1024):
    """E-distance of every perturbation's cells to the control cells (NaN if a group is empty).

    The control cells are densified once. Perturbed cells are visited in blocks of about
    ``chunk_size`` cells, sorted by perturbation, each block densified once: its
    distances to the controls come from one matrix product, and the within-perturbation
    mean distances from the dense rows of each perturbation in the block (a perturbation
    larger than a block is handled on its own).
    """
    X = sp.csr_matrix(cells.X) if sp.issparse(cells.X) else np.asarray(cells.X)
    group = np.asarray(cells.group)
    C = _dense(X[np.flatnonzero(group == -1)])
    if C.shape[0] == 0:
        raise ValueError("E-distance needs control cells; none were found")
    s_c = mean_pairwise_distance(C, chunk_size=chunk_size)
    c_sq = np.einsum("ij,ij->i", C, C)
    rows = np.flatnonzero((group >= 0) & (group < n_perturbations))
    order = rows[np.argsort(group[rows], kind="stable")]
    sizes = np.bincount(group[rows], minlength=n_perturbations)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    to_ctrl = np.zeros(n_perturbations)
    within = np.full(n_perturbations, np.nan)
    groups = np.flatnonzero(sizes > 0)
    i = 0
    while i < groups.size:
        # a block of whole perturbations holding at most chunk_size cells (at least one group)
        j = i + 1
        while j < groups.size and bounds[groups[j] + 1] - bounds[groups[i]] <= chunk_size:
            j += 1
        lo, hi = bounds[groups[i]], bounds[groups[j - 1] + 1]
        if hi - lo > chunk_size:  # one large perturbation: chunked routines
            p = groups[i]
            xp = X[order[lo:hi]]
            within[p] = mean_pairwise_distance(xp, chunk_size=chunk_size)
            to_ctrl[p] = mean_pairwise_distance(xp, C, chunk_size=chunk_size)
        else:
            a = _dense(X[order[lo:hi]])
            d2 = np.einsum("ij,ij->i", a, a)[:, None] + c_sq[None, :] - 2.0 * (a @ C.T)
            np.maximum(d2, 0.0, out=d2)
            per_cell = np.sqrt(d2).mean(axis=1)
            for p in groups[i:j]:
                s0, s1 = bounds[p] - lo, bounds[p + 1] - lo
                to_ctrl[p] = per_cell[s0:s1].mean()
                within[p] = mean_pairwise_distance(a[s0:s1], chunk_size=chunk_size)
        i = j
    out = np.full(n_perturbations, np.nan)
    out[groups] = 2 * to_ctrl[groups] - within[groups] - s_c
    scale = float(np.mean(to_ctrl[groups])) if groups.size else 0.0
    return out, scale


def _finite(cells, name):
    data = cells.X.data if sp.issparse(cells.X) else np.asarray(cells.X)
    bad = int(np.sum(~np.isfinite(data)))
    if bad:
        raise ValueError(f"parameter {name!r} must hold finite expression values; got {bad} NaN or infinite "
                         "value(s) (pearson_edistance would silently lose their perturbations)")


def pearson_edistance(inp) -> np.ndarray:
    """Pearson correlation of observed and predicted E-distances (repeated P times)."""
    if inp.real_cells is None or inp.pred_cells is None:
        raise ValueError("pearson_edistance needs cells: predictions must carry .cells")
    P = inp.n_perturbations
    cache = inp.cache if inp.cache is not None else {}
    key = ("edistances_real", id(inp.real_cells))
    if key not in cache or cache[key][0] is not inp.real_cells:
        # the observed side is the same for every prediction of a score() call
        _finite(inp.real_cells, "real_cells")
        cache[key] = (inp.real_cells, _edistances(inp.real_cells, P))
    a, sa = cache[key][1]
    _finite(inp.pred_cells, "pred_cells")
    b, sb = _edistances(inp.pred_cells, P)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        warnings.warn(f"pearson_edistance is NaN: {int(ok.sum())} perturbation(s) have cells on both sides "
                      "(a correlation needs 2)", UserWarning, stacklevel=2)
        return np.full(P, np.nan)
    for side, v, scale in (("observed", a[ok], sa), ("predicted", b[ok], sb)):
        spread = float(np.std(v))
        if spread <= 1e-9 * max(scale, np.finfo(float).tiny):
            warnings.warn(f"pearson_edistance is NaN: the {side} E-distances are constant up to rounding "
                          f"(standard deviation {spread:.3g}, mean distance to the controls {scale:.3g}); "
                          "their correlation is undefined", UserWarning, stacklevel=2)
            return np.full(P, np.nan)
    r = np.corrcoef(a[ok], b[ok])[0, 1]
    return np.full(P, r)


register(Metric("pearson_edistance", pearson_edistance, True, 1.0, frozenset({"cells"}),
                "Pearson correlation of observed and predicted E-distances to control", "cell-eval",
                per_set=True), overwrite=True)
