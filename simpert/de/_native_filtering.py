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

__all__ = ["bh", "independent_filtering", "lowess_rows", "adjust_pvalues", "shrunk_results_rules"]


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


def _sweep(x: np.ndarray, ns: int, delta: float):
    """The points R's ``clowess`` estimates, their windows, and how the rest are filled."""
    n = x.size
    est, windows, fill = [], [], []
    nleft, nright, last, i = 0, ns - 1, -1, 0
    while True:
        if nright < n - 1 and x[i] - x[nleft] > x[nright + 1] - x[i]:
            nleft += 1
            nright += 1
            continue
        est.append(i)
        windows.append(nleft)
        if last < i - 1:
            fill.append((last, i))
        last = i
        cut = x[last] + delta
        j = last + 1
        while j < n:
            if x[j] > cut:
                break
            if x[j] == x[last]:
                fill.append((-1 - last, j))  # tie: copy
                last = j
            j += 1
        i = max(last + 1, j - 1)
        if last >= n - 1:
            break
    return est, windows, fill


def lowess_rows(x: np.ndarray, Y: np.ndarray, *, f: float = 0.2, nsteps: int = 3, delta: float | None = None):
    """R's ``lowess`` (``clowess``) applied to every row of ``Y`` against the shared, sorted ``x``.

    Parameters
    ----------
    x : ndarray, shape (n,)
        Sorted abscissae.
    Y : ndarray, shape (k, n)
        Ordinates, one series per row.
    f : float, default 0.2
        Smoother span.
    nsteps : int, default 3
        Robustness iterations.
    delta : float, optional
        Default ``0.01 * (max(x) - min(x))``.

    Returns
    -------
    ndarray, shape (k, n)
        Fitted values.
    """
    x = np.asarray(x, dtype=float)
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    k, n = Y.shape
    rng_x = x[-1] - x[0]
    if delta is None:
        delta = 0.01 * rng_x
    ns = max(2, min(n, int(f * n + 1e-7)))
    est, lefts, fill = _sweep(x, ns, delta)
    # base (tricube) weights of each estimated point
    B = np.zeros((len(est), n))
    H = np.zeros(len(est))
    for r, (i, nl) in enumerate(zip(est, lefts)):
        h = max(x[i] - x[nl], x[min(nl + ns - 1, n - 1)] - x[i])
        H[r] = h
        d = np.abs(x - x[i])
        w = np.where(d <= 0.001 * h, 1.0, (1.0 - (d / h) ** 3) ** 3) if h > 0 else np.ones(n)
        keep = (np.arange(n) >= nl) & (d <= 0.999 * h)
        B[r] = np.where(keep, w, 0.0)
    xs = x[est]
    rw = np.ones((k, n))
    ys = Y.copy()
    active = np.ones(k, dtype=bool)
    for it in range(nsteps + 1):
        W = B[None, :, :] * rw[:, None, :]
        a = W.sum(axis=2)
        ok = a > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            W = W / a[:, :, None]
            xa = (W * x[None, None, :]).sum(axis=2)
            c = (W * (x[None, None, :] - xa[:, :, None]) ** 2).sum(axis=2)
            slope = (H[None, :] > 0) & (np.sqrt(c) > 0.001 * rng_x)
            b = np.where(slope, (xs[None, :] - xa) / c, 0.0)
            W = W * np.where(slope[:, :, None], b[:, :, None] * (x[None, None, :] - xa[:, :, None]) + 1.0, 1.0)
            fit_e = np.where(ok, (W * Y[:, None, :]).sum(axis=2), Y[:, est])
        new = np.empty_like(Y)
        new[:, est] = fit_e
        for last, i in fill:
            if last < 0:
                new[:, i] = new[:, -1 - last]
            else:
                for j in range(last + 1, i):
                    al = (x[j] - x[last]) / (x[i] - x[last])
                    new[:, j] = al * new[:, i] + (1 - al) * new[:, last]
        ys = np.where(active[:, None], new, ys)
        if it == nsteps:
            break
        res = Y - ys
        sc = np.abs(res).mean(axis=1)
        cmad = 6.0 * np.median(np.abs(res), axis=1)
        active &= ~(cmad < 1e-7 * sc)
        if not active.any():
            break
        r = np.abs(res)
        with np.errstate(divide="ignore", invalid="ignore"):
            rw_new = np.where(r <= 0.001 * cmad[:, None], 1.0,
                              np.where(r <= 0.999 * cmad[:, None], (1.0 - (r / cmad[:, None]) ** 2) ** 2, 0.0))
        rw = np.where(active[:, None], rw_new, rw)
    return ys


def _choose_all(num_rej: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """DESeq2's choice of the filter threshold for every contrast (row of ``num_rej``)."""
    j = np.zeros(num_rej.shape[0], dtype=int)
    rows = np.flatnonzero(num_rej.max(axis=1) > 10)
    if rows.size == 0:
        return j
    nr = num_rej[rows].astype(float)
    fit = lowess_rows(theta, nr, f=0.2, nsteps=3)
    pos = nr > 0
    sq = np.where(pos, (nr - fit) ** 2, 0.0)
    rms = np.sqrt(sq.sum(axis=1) / np.maximum(pos.sum(axis=1), 1))
    thresh = fit.max(axis=1) - rms
    above = nr > thresh[:, None]
    j[rows] = np.where(above.any(axis=1), np.argmax(above, axis=1), 0)
    return j


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
    j = _choose_all(num_rej, theta)
    masked = np.where(level[None, :] > j[:, None], pvalues, np.nan)
    return bh(masked), cutoffs[j]


def adjust_pvalues(lfc, se, stat, pvalue, base_mean, now_zero, *, independent_filter: bool, alpha: float):
    """Zero the genes whose counts are all 0 after replacement, then adjust p-values.

    ``lfc``, ``se``, ``stat``, ``pvalue`` (perturbations x genes) and ``base_mean`` (genes) are
    changed in place for ``now_zero`` genes (log2FC, SE and stat 0, p 1, base mean 0); the
    adjusted p-values come from R's independent filtering or plain BH within each contrast.

    Returns
    -------
    padj : ndarray (P, G)
    thresholds : ndarray (P,)
        Independent-filtering thresholds of base mean (0 without filtering).
    """
    if now_zero.any():
        lfc[:, now_zero] = 0.0
        se[:, now_zero] = 0.0
        stat[:, now_zero] = 0.0
        pvalue[:, now_zero] = 1.0
        base_mean[now_zero] = 0.0
    if independent_filter:
        return independent_filtering(pvalue, base_mean, alpha=alpha)
    return bh(pvalue), np.zeros(pvalue.shape[0])


def shrunk_results_rules(lfc_s, se_s, contrast_zero, now_zero) -> None:
    """R's ``results()`` rules on shrunken columns (``lfcShrink`` reports through it), in place.

    An all-zero contrast has log2FC 0 (``cleanContrast``); a gene all zero after Cook's
    replacement has log2FC and SE 0.

    Parameters
    ----------
    lfc_s, se_s : ndarray, shape (n_perturbations, n_genes)
    contrast_zero : ndarray of bool, shape (n_perturbations, n_genes)
    now_zero : ndarray of bool, shape (n_genes,)
    """
    lfc_s[contrast_zero] = 0.0
    lfc_s[:, now_zero] = 0.0
    se_s[:, now_zero] = 0.0
