"""Row-wise statistics on (perturbation x gene) matrices, with an optional gene mask."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["row_mean", "row_pearson", "row_rank", "row_spearman", "row_cosine", "row_r2"]


def _w(mask, shape):
    if mask is None:
        return None
    return np.broadcast_to(mask, shape).astype(float)


def row_mean(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean of each row over the genes kept by ``mask`` (all genes when None)."""
    if mask is None:
        return x.mean(axis=1)
    m = _w(mask, x.shape)
    return (x * m).sum(axis=1) / m.sum(axis=1)


def row_pearson(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation of ``x[i]`` and ``y[i]`` for every row ``i``.

    Rows where either side is constant give NaN (as scipy.stats.pearsonr does).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if mask is None:
        xc = x - x.mean(axis=1, keepdims=True)
        yc = y - y.mean(axis=1, keepdims=True)
    else:
        m = _w(mask, x.shape)
        n = m.sum(axis=1, keepdims=True)
        xc = (x - (x * m).sum(axis=1, keepdims=True) / n) * m
        yc = (y - (y * m).sum(axis=1, keepdims=True) / n) * m
    # normalise first (as scipy does) for accuracy with large offsets
    nx = np.sqrt((xc * xc).sum(axis=1))
    ny = np.sqrt((yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ((xc / nx[:, None]) * (yc / ny[:, None])).sum(axis=1)
    bad = (nx == 0) | (ny == 0)
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
        m = _w(mask, x.shape)
        x = x * m
        y = y * m
    nx = np.sqrt((x * x).sum(axis=1))
    ny = np.sqrt((y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=1) / (nx * ny)


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
