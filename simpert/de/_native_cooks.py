"""Cook's distances and count-outlier handling (DESeq2's defaults).

- Robust dispersion for the Cook's distances: a trimmed method-of-moments estimate per level
  with 3 or more samples (trim 1/3, 1/4 or 1/8 and scale 2.04, 1.86 or 1.51 for up to 3, up to
  23 and more samples), the largest over levels, minus the mean, over the squared mean, at
  least 0.04 (``robustMethodOfMomentsDisp``).
- ``D_j = (y_j - mu_j)^2 / (mu_j + alpha mu_j^2) / p * h_j / (1 - h_j)^2``.
- A gene's maximum is taken over samples in levels with 3 or more samples; it is an outlier
  when the maximum exceeds the 0.99 quantile of F(p, m - p).
- Counts with a large Cook's distance in levels with 7 or more samples are replaced by the
  20% trimmed mean of the normalised counts times the size factor (truncated to an integer)
  and the gene refitted (``replaceOutliers``, ``refitWithoutOutliers``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import fdtri

__all__ = ["robust_disp", "cooks_distance", "max_cooks", "cooks_cutoff", "trimmed_mean_rows",
           "replacement_counts"]


def trimmed_mean_rows(x: np.ndarray, trim: float) -> np.ndarray:
    """R's ``mean(x, trim)`` along the last axis."""
    n = x.shape[-1]
    lo = int(np.floor(n * trim))
    if lo == 0:
        return x.mean(axis=-1)
    s = np.sort(x, axis=-1)
    return s[..., lo:n - lo].mean(axis=-1)


def _trim_scale(n: int) -> tuple[float, float]:
    if n <= 3.5:
        return 1.0 / 3.0, 2.04
    if n <= 23.5:
        return 0.25, 1.86
    return 0.125, 1.51


def robust_disp(norm: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Robust method-of-moments dispersion used for Cook's distances.

    Parameters
    ----------
    norm : ndarray, shape (n_genes, n_samples)
        Normalised counts, samples ordered by level.
    starts, sizes : ndarray of int
        Level segments.

    Returns
    -------
    ndarray, shape (n_genes,)
    """
    g = norm.shape[0]
    big = np.flatnonzero(sizes >= 3)
    if big.size:
        v = np.full(g, -np.inf)
        for n in np.unique(sizes[big]):
            lv = big[sizes[big] == n]
            idx = starts[lv][:, None] + np.arange(n)[None, :]
            block = norm[:, idx]  # (g, k, n)
            trim, scale = _trim_scale(int(n))
            cm = trimmed_mean_rows(block, trim)
            sq = (block - cm[..., None]) ** 2
            ve = scale * trimmed_mean_rows(sq, trim)
            v = np.maximum(v, ve.max(axis=1))
    else:
        rm = trimmed_mean_rows(norm, 1.0 / 8.0)
        v = 1.51 * trimmed_mean_rows((norm - rm[:, None]) ** 2, 1.0 / 8.0)
    m = norm.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = (v - m) / m ** 2
    return np.maximum(alpha, 0.04)


def cooks_distance(y, mu, H, alpha_rob, p: int) -> np.ndarray:
    """Cook's distance of every count (genes x samples)."""
    V = mu + alpha_rob[:, None] * mu ** 2
    with np.errstate(divide="ignore", invalid="ignore"):  # h = 1 for a single-sample level, as in R
        return (y - mu) ** 2 / V / p * H / (1.0 - H) ** 2


def max_cooks(cooks: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per-gene maximum over samples in levels with 3 or more samples (NaN when none)."""
    m, p = cooks.shape[1], sizes.size
    use = np.repeat(sizes >= 3, sizes)
    if not (m > p and use.any()):
        return np.full(cooks.shape[0], np.nan)
    return cooks[:, use].max(axis=1)


def cooks_cutoff(m: int, p: int) -> float:
    """The 0.99 quantile of F(p, m - p)."""
    return float(fdtri(p, m - p, 0.99))


def replacement_counts(norm: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """``as.integer(trimmed mean (20%) of normalised counts * size factor)``."""
    tbm = trimmed_mean_rows(norm, 0.2)
    return np.trunc(tbm[:, None] * sf[None, :])
