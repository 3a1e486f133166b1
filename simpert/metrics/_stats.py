"""Row-wise statistics on (perturbation x gene) matrices, with an optional gene mask.

Constant rows, rows without kept genes and zero weights give NaN where the docstrings say
so; the divisions that produce them run under ``np.errstate`` so that no RuntimeWarning
is emitted for a documented result.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["row_mean", "row_pearson", "row_rank", "row_spearman", "row_cosine", "row_r2", "top_by_rank", "top_k_mask"]


def row_mean(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean of each row over the genes kept by ``mask`` (all genes when None; NaN when none kept)."""
    if mask is None:
        return x.mean(axis=1)
    m = np.broadcast_to(mask, x.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m, x, 0.0).sum(axis=1) / m.sum(axis=1)


def row_pearson(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation of ``x[i]`` and ``y[i]`` for every row ``i``.

    Rows where either side is constant give NaN (as scipy.stats.pearsonr does).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if mask is None:
            xc = x - x.mean(axis=1, keepdims=True)
            yc = y - y.mean(axis=1, keepdims=True)
        else:
            m = np.broadcast_to(mask, x.shape)
            n = m.sum(axis=1, keepdims=True)
            xc = np.where(m, x - np.where(m, x, 0.0).sum(axis=1, keepdims=True) / n, 0.0)
            yc = np.where(m, y - np.where(m, y, 0.0).sum(axis=1, keepdims=True) / n, 0.0)
        nx = np.sqrt(np.einsum("ij,ij->i", xc, xc))
        ny = np.sqrt(np.einsum("ij,ij->i", yc, yc))
        r = np.einsum("ij,ij->i", xc, yc) / (nx * ny)
    bad = (nx == 0) | (ny == 0) | ~np.isfinite(r)
    r = np.clip(r, -1.0, 1.0)
    r[bad] = np.nan
    return r


def row_rank(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Average ranks (1-based) within each row; masked-out entries get NaN.

    Masked-out entries are ranked last and then dropped, which leaves the ranks of the
    kept entries exactly as if the masked ones were absent.
    """
    x = np.asarray(x, dtype=float)
    if mask is None:
        return rankdata(x, axis=1)
    m = np.broadcast_to(mask, x.shape)
    xx = np.where(m, x, np.inf)
    r = rankdata(xx, axis=1)
    return np.where(m, r, np.nan)


def row_spearman(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Spearman correlation per row (Pearson of average ranks)."""
    rx = row_rank(x, mask)
    ry = row_rank(y, mask)
    if mask is not None:
        rx = np.nan_to_num(rx)
        ry = np.nan_to_num(ry)
    return row_pearson(rx, ry, mask)


def row_cosine(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarity per row (NaN where either row is zero)."""
    if mask is not None:
        m = np.broadcast_to(mask, x.shape)
        x = np.where(m, x, 0.0)
        y = np.where(m, y, 0.0)
    nx = np.sqrt(np.einsum("ij,ij->i", x, x))
    ny = np.sqrt(np.einsum("ij,ij->i", y, y))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("ij,ij->i", x, y) / (nx * ny)


def row_r2(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Coefficient of determination per row, optionally weighted (sklearn's r2_score).

    ``1 - sum w (y - yhat)^2 / sum w (y - ybar_w)^2`` with ``ybar_w`` the weighted mean of
    ``y``; a zero weight removes a gene. Rows with a zero denominator give 1 for a perfect
    prediction and 0 otherwise (sklearn's ``force_finite=True``).
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    w = np.ones_like(y_true) if weights is None else np.broadcast_to(np.asarray(weights, float), y_true.shape)
    sw = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ybar = (w * y_true).sum(axis=1, keepdims=True) / sw
        num = (w * (y_true - y_pred) ** 2).sum(axis=1)
        den = (w * (y_true - ybar) ** 2).sum(axis=1)
        out = 1.0 - num / den
    zero = den == 0
    out[zero & (num == 0)] = 1.0
    out[zero & (num != 0)] = 0.0
    return out


def top_by_rank(a: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    """(P, G) mask of entries whose average rank by decreasing ``a`` is at most ``n``.

    Equals ``rankdata(-a, axis=1) <= n`` restricted to ``mask`` (ties at the boundary
    share their average rank, so a tie straddling rank n can leave fewer than n genes),
    found by one partition per row instead of a sort. Rows holding NaN select nothing,
    as ``rankdata`` propagates NaN.
    """
    a = np.asarray(a, dtype=float)
    P, G = a.shape
    if mask is not None:
        m = np.broadcast_to(mask, a.shape)
        a = np.where(m, a, -np.inf)
    nanrow = np.isnan(a).any(axis=1)
    n = int(n)
    if n <= 0 or G == 0:
        return np.zeros(a.shape, dtype=bool)
    if n >= G:
        out = np.ones(a.shape, dtype=bool)
    else:
        t = np.partition(np.nan_to_num(a, nan=-np.inf), G - n, axis=1)[:, G - n][:, None]  # n-th largest
        gt = a > t
        eq = a == t
        avg = gt.sum(axis=1) + (eq.sum(axis=1) + 1) / 2.0
        out = gt | (eq & (avg <= n)[:, None])
    if mask is not None:
        out &= m
    out[nanrow] = False
    return out


def top_k_mask(a: np.ndarray, n: int) -> np.ndarray:
    """(P, G) mask of the ``n`` largest entries per row, ties broken towards later columns.

    The same selection as the last ``n`` columns of a stable ascending argsort, found by
    one partition per row.
    """
    a = np.asarray(a, dtype=float)
    P, G = a.shape
    n = min(int(n), G)
    if n <= 0:
        return np.zeros(a.shape, dtype=bool)
    if n >= G:
        return np.ones(a.shape, dtype=bool)
    t = np.partition(a, G - n, axis=1)[:, G - n][:, None]
    gt = a > t
    eq = a == t
    need = n - gt.sum(axis=1)  # tied entries still to take, from the right
    from_right = np.cumsum(eq[:, ::-1], axis=1)[:, ::-1]
    return gt | (eq & (from_right <= need[:, None]))
