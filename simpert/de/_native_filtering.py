"""Benjamini-Hochberg adjustment and DESeq2's independent filtering, vectorised over contrasts.

Independent filtering (``pvalueAdjustment`` with genefilter's ``filtered_p``): for 50
quantiles ``theta`` of the base mean (from the fraction of zeros, or 0, to 0.95), the genes
at or above the quantile are BH-adjusted and the rejections at ``alpha`` counted; a lowess
curve (f = 1/5) is fitted to the counts; the first threshold whose count exceeds
``max(fit) - sqrt(mean(residual^2))`` is used (none when no threshold gives more than 10
rejections). P-values that are NA (Cook's outliers, all-zero genes) are left out of every
adjustment, as ``p.adjust`` does.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bh", "independent_filtering"]


def bh(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values along the last axis; NaN entries stay NaN and are not counted.

    Parameters
    ----------
    p : ndarray, shape (..., n)

    Returns
    -------
    ndarray, same shape
    """
    p = np.asarray(p, dtype=float)
    shape = p.shape
    p2 = p.reshape(-1, shape[-1])
    order = np.argsort(p2, axis=1, kind="stable")  # NaN last
    ps = np.take_along_axis(p2, order, axis=1)
    n = np.isfinite(ps).sum(axis=1, keepdims=True).astype(float)
    ranks = np.arange(1, shape[-1] + 1, dtype=float)[None, :]
    adj = (n / ranks) * ps
    adj = np.where(np.isfinite(adj), adj, np.inf)
    adj = np.minimum.accumulate(adj[:, ::-1], axis=1)[:, ::-1]
    adj = np.minimum(adj, 1.0)
    adj[~np.isfinite(ps)] = np.nan
    out = np.empty_like(p2)
    np.put_along_axis(out, order, adj, axis=1)
    return out.reshape(shape)


def _choose(num_rej: np.ndarray, theta: np.ndarray) -> int:
    if num_rej.max() <= 10:
        return 0
    from statsmodels.nonparametric.smoothers_lowess import lowess

    fit = lowess(num_rej.astype(float), theta, frac=0.2, it=3, delta=0.01 * (theta[-1] - theta[0]),
                 return_sorted=False)
    pos = num_rej > 0
    resid = num_rej[pos] - fit[pos] if pos.any() else np.zeros(1)
    thresh = fit.max() - np.sqrt(np.mean(resid ** 2))
    above = np.flatnonzero(num_rej > thresh)
    return int(above[0]) if above.size else 0


def independent_filtering(pvalues: np.ndarray, filter_stat: np.ndarray, *, alpha: float = 0.1,
                          n_theta: int = 50):
    """Adjusted p-values after independent filtering on ``filter_stat``, per contrast (row).

    Parameters
    ----------
    pvalues : ndarray, shape (n_contrasts, n_genes)
        P-values (NaN where not tested).
    filter_stat : ndarray, shape (n_genes,)
        The filter statistic (the base mean).
    alpha : float, default 0.1
        Target FDR used to choose the threshold.
    n_theta : int, default 50
        Number of quantile thresholds.

    Returns
    -------
    padj : ndarray, shape (n_contrasts, n_genes)
    threshold : ndarray, shape (n_contrasts,)
        Base-mean threshold used per contrast.
    """
    pvalues = np.atleast_2d(np.asarray(pvalues, dtype=float))
    k, g = pvalues.shape
    lower = float(np.mean(filter_stat == 0))
    upper = 0.95 if lower < 0.95 else 1.0
    theta = np.linspace(lower, upper, n_theta)
    cutoffs = np.quantile(filter_stat, theta)
    # level of each gene = number of thresholds it passes (filter >= cutoff_i for i < level)
    level = (filter_stat[:, None] >= cutoffs[None, :]).sum(axis=1)
    valid_gene = np.isfinite(pvalues)
    num_rej = np.zeros((k, n_theta), dtype=np.int64)
    # only p-values below alpha can be rejected; work on the sorted prefix
    order = np.argsort(np.where(valid_gene, pvalues, np.inf), axis=1, kind="stable")
    ps = np.take_along_axis(pvalues, order, axis=1)
    kmax = int(np.max((ps < alpha).sum(axis=1))) if k else 0
    if kmax > 0:
        ps_k = ps[:, :kmax]
        lev_k = level[order[:, :kmax]]
        passes = (level[:, None] > np.arange(n_theta)[None, :]).astype(np.float64)
        n_used = valid_gene.astype(np.float64) @ passes  # (k, n_theta)
        for i in range(n_theta):
            n_i = n_used[:, i]
            use_k = lev_k > i
            rank = np.cumsum(use_k, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                crit = use_k & ((n_i[:, None] / rank) * ps_k < alpha)
            num_rej[:, i] = np.where(crit, rank, 0).max(axis=1)
    j = np.array([_choose(num_rej[c], theta) for c in range(k)], dtype=int)
    masked = np.where(level[None, :] > j[:, None], pvalues, np.nan)
    return bh(masked), cutoffs[j]
