"""DESeq2's normal-prior shrinkage of log fold changes (``lfcShrink(type = "normal")``).

For a contrast of factor levels, ``lfcShrink`` refits the GLM with the expanded model matrix
(intercept plus one column per level) and a zero-centred normal prior on every level column:

1. the prior variance of each MLE coefficient (and, for a factor with more than two
   non-reference levels, of every pairwise difference of those coefficients) is matched to
   the weighted 0.95 quantile of ``|LFC|`` (weights ``1 / (1 / baseMean + dispFit)``, genes
   with ``|LFC| < 10``; Hmisc's ``wtd.quantile`` with normalised weights), as
   ``estimateBetaPriorVar`` does; ``sigma^2 = (q / qnorm(0.975))^2``;
2. every level column gets the mean of those variances (``averagePriorsOverLevels``); the
   intercept gets 1e6;
3. the ridge-penalised IRLS is refitted with ``lambda = 1 / (sigma^2 log(2)^2)`` and the
   contrast ``level - reference`` and its sandwich standard error are reported.

With thousands of levels the number of pairwise differences grows quadratically; beyond
``max_pairs`` a fixed, seeded random subset of pairs estimates their mean variance.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from ._native_glm import LOG2E, contrast_se, irls_one_factor, optim_refit

__all__ = ["weighted_upper_quantile_var", "beta_prior_var", "shrink_normal"]


def weighted_upper_quantile_var(X: np.ndarray, weights: np.ndarray, upper: float = 0.05) -> np.ndarray:
    """Variance matched to the weighted upper quantile of ``|x|``, per row of ``X``.

    Parameters
    ----------
    X : ndarray, shape (k, n_genes)
        Coefficients (log2 scale).
    weights : ndarray, shape (n_genes,)
        Gene weights.
    upper : float, default 0.05
        Upper tail probability.

    Returns
    -------
    ndarray, shape (k,)
        ``(q / qnorm(1 - upper / 2))^2``, or 1e6 for a row without a finite ``|x| < 10``.
    """
    ax = np.abs(X)
    use = ax < 10
    key = np.where(use, ax, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    xs = np.take_along_axis(key, order, axis=1)
    ws = np.where(np.take_along_axis(use, order, axis=1), weights[order], 0.0)
    n_use = use.sum(axis=1)
    tot = ws.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ws = ws * (n_use / tot)[:, None]
    cw = np.cumsum(ws, axis=1)
    n = cw[:, -1]
    pos = 1.0 + (n - 1.0) * (1.0 - upper)
    low = np.maximum(np.floor(pos), 1.0)
    high = np.minimum(low + 1.0, n)
    frac = pos % 1.0
    last = np.maximum(n_use - 1, 0)
    il = np.minimum((cw < low[:, None]).sum(axis=1), last)
    ih = np.minimum((cw < high[:, None]).sum(axis=1), last)
    rows = np.arange(X.shape[0])
    q = (1.0 - frac) * xs[rows, il] + frac * xs[rows, ih]
    out = (q / ndtri(1.0 - upper / 2.0)) ** 2
    return np.where(n_use > 0, out, 1e6)


def beta_prior_var(lfc: np.ndarray, base_mean: np.ndarray, disp_fit: np.ndarray, *,
                   max_pairs: int = 5000, rng=0) -> float:
    """Prior variance (log2 scale) shared by the level columns of the expanded model.

    Parameters
    ----------
    lfc : ndarray, shape (n_perturbations, n_genes)
        MLE log2 fold changes against the reference (genes that are not all zero).
    base_mean, disp_fit : ndarray, shape (n_genes,)
        Base means and dispersion-trend values.
    max_pairs : int, default 5000
        Largest number of pairwise differences used exactly.
    rng : int, default 0
        Seed of the subset of pairs used beyond ``max_pairs``.

    Returns
    -------
    float
    """
    w = 1.0 / (1.0 / base_mean + disp_fit)
    k = lfc.shape[0]
    v_main = weighted_upper_quantile_var(lfc, w)
    if k < 2:
        return float(v_main.mean())
    if k == 2:
        ii, jj = np.array([1]), np.array([0])
        total = 1
    else:
        total = k * (k - 1) // 2
        if total <= max_pairs:
            jj, ii = np.triu_indices(k, 1)
        else:
            gen = np.random.default_rng(rng)
            flat = gen.choice(total, size=max_pairs, replace=False)
            iu, ju = np.triu_indices(k, 1)
            ii, jj = ju[flat], iu[flat]
    v_pairs = np.concatenate([weighted_upper_quantile_var(lfc[ii[s:s + 500]] - lfc[jj[s:s + 500]], w)
                              for s in range(0, ii.size, 500)])
    return float((v_main.sum() + total * v_pairs.mean()) / (k + total))


def shrink_normal(y, sf, alpha, starts, sizes, prior_var_log2: float, eta_start=None):
    """Refit with the expanded design and normal prior; return shrunken LFC and SE (log2).

    Parameters
    ----------
    y : ndarray, shape (n_genes, n_samples)
        Counts.
    sf : ndarray
        Size factors.
    alpha : ndarray, shape (n_genes,)
        Final dispersions.
    starts, sizes : ndarray of int
        Level segments.
    prior_var_log2 : float
        Prior variance of each level column (log2 scale).
    eta_start : ndarray, shape (n_genes, n_levels), optional
        Starting log means; by default R's start for the expanded design (every level at the
        log mean of the normalised counts). Fits at the IRLS iteration cap are refitted with
        bounded L-BFGS-B (:func:`~simpert.de._native_glm.optim_refit`), as in R.

    Returns
    -------
    lfc, se : ndarray, shape (n_levels - 1, n_genes)
    """
    L = len(starts)
    ind = np.ones(L, dtype=bool)
    lam0 = 1e-6 / np.log(2.0) ** 2
    lam = np.full(L, 1.0 / (prior_var_log2 * np.log(2.0) ** 2))
    if eta_start is None:
        # R's start for the expanded (rank-deficient) design: the intercept at the log mean
        # of the normalised counts, every level coefficient 0
        eta_start = np.repeat(np.log((y / sf[None, :]).mean(axis=1))[:, None], L, axis=1)
    eta, n_iter = irls_one_factor(y, sf, alpha, starts, sizes, ind, lam0, lam, eta0=eta_start)
    bad = np.flatnonzero(n_iter >= 100)
    if bad.size:  # R: fitNbinomGLMsOptim with the prior, for fits at the iteration cap
        lam_log2 = np.r_[1e-6, np.full(L, 1.0 / prior_var_log2)]
        eta[bad], _ = optim_refit(y[bad], sf, alpha[bad], starts, sizes, eta[bad], eta_start[bad],
                                  lam_log2=lam_log2, expanded=True)
    level = np.repeat(np.arange(L), sizes)
    mc = np.maximum(np.exp(eta[:, level]) * sf[None, :], 0.5)
    W = np.add.reduceat(mc / (1.0 + alpha[:, None] * mc), starts, axis=1)
    lfc = (eta[:, 1:] - eta[:, :1]).T * LOG2E
    se = contrast_se(W, ind, lam0, lam, np.arange(1, L)) * LOG2E
    return lfc, se
