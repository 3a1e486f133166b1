"""Gene-wise and maximum a posteriori (MAP) dispersion estimates.

DESeq2 maximises the Cox-Reid adjusted log likelihood (gene-wise) and the log posterior
with a log-normal prior centred on the trend (MAP) in ``a = log(alpha)`` by an Armijo line
search (``fitDisp`` in ``src/DESeq2.cpp``), called from ``estimateDispersionsGeneEst`` and
``estimateDispersionsMAP`` in ``R/core.R``. That line search is replayed here step for step,
vectorised over genes (:func:`armijo_max_log_alpha`), because where it stops decides R's
answer:

- starting values: ``min(rough, moments)`` estimates clipped to ``[minDisp, maxDisp]``
  (gene-wise); the gene-wise estimate, or the trend where it is below a tenth of the trend
  (MAP);
- the gene-wise estimate falls back to the starting value when the log likelihood did not
  increase by more than ``|lp0| / 1e6`` (``noIncrease``);
- not converged: the search used all 100 proposals (the iteration cap) or, gene-wise, stopped
  after its first proposal; R then re-estimates those genes (gene-wise: unless below
  ``10 minDisp``; MAP: all) on its 20 + 20 point grid (``fitDispGrid``), and so does this
  module;
- the bounds: the search stops below ``log(minDisp / 10)``, proposals stay within
  ``[-30, 10]``, results are clipped to ``[minDisp, maxDisp]`` with
  ``maxDisp = max(10, n_samples)``.

:func:`newton_max_log_alpha` (a safeguarded Newton method with exact derivatives) finds the
exact optimum; it is kept for checks of the line search.
"""

from __future__ import annotations

import numpy as np

from ._native_nbloglik import count_table, log_posterior, log_posterior_derivs

__all__ = ["armijo_max_log_alpha", "newton_max_log_alpha", "grid_max_log_alpha", "genewise_dispersion",
           "map_dispersion", "rough_moments_init"]

MIN_DISP = 1e-8
_EPS_ARMIJO = 1e-4
_TOL = 1e-6


def rough_moments_init(y: np.ndarray, sf: np.ndarray, starts: np.ndarray, sizes: np.ndarray,
                       base_mean: np.ndarray, base_var: np.ndarray, max_disp: float) -> np.ndarray:
    """DESeq2's starting dispersion: ``min(roughDispEstimate, momentsDispEstimate)`` clipped.

    Parameters
    ----------
    y : ndarray, shape (n_genes, n_samples)
        Counts.
    sf : ndarray, shape (n_samples,)
        Size factors.
    starts, sizes : ndarray of int
        Level segments.
    base_mean, base_var : ndarray, shape (n_genes,)
        Mean and variance of the normalised counts.
    max_disp : float
        Upper bound.

    Returns
    -------
    ndarray, shape (n_genes,)
    """
    m, p = y.shape[1], len(starts)
    norm = y / sf[None, :]
    gmean = np.add.reduceat(norm, starts, axis=1) / sizes[None, :]
    mu = np.maximum(np.repeat(gmean, sizes, axis=1), 1.0)
    rough = np.maximum((((norm - mu) ** 2 - mu) / mu ** 2).sum(axis=1) / (m - p), 0.0)
    xim = np.mean(1.0 / sf)
    with np.errstate(divide="ignore", invalid="ignore"):
        moments = (base_var - xim * base_mean) / base_mean ** 2
    return np.minimum(np.maximum(MIN_DISP, np.minimum(rough, moments)), max_disp)


def newton_max_log_alpha(y, mu, starts, a0, lo, hi, prior_mean=None, prior_var=None, *,
                         tol: float = 1e-8, maxit: int = 80) -> np.ndarray:
    """Maximise the (prior-penalised) Cox-Reid log likelihood in ``a`` for every gene.

    Parameters
    ----------
    y, mu : ndarray, shape (n_genes, n_samples)
        Counts and fitted means.
    starts : ndarray of int
        Level segments.
    a0 : ndarray, shape (n_genes,)
        Starting values.
    lo, hi : float
        Box for ``a``; a gene whose gradient points out of the box at its edge stops there.
    prior_mean : ndarray, optional
        Prior means (MAP).
    prior_var : float, optional
        Prior variance.
    tol : float
        Convergence tolerance on the step in ``a``.
    maxit : int
        Iteration cap.

    Returns
    -------
    ndarray, shape (n_genes,)
    """
    a = np.clip(np.asarray(a0, dtype=float).copy(), lo, hi)
    n = a.shape[0]
    blo = np.full(n, -np.inf)
    bhi = np.full(n, np.inf)
    active = np.arange(n)
    for _ in range(maxit):
        if active.size == 0:
            break
        aa = a[active]
        pm = None if prior_mean is None else prior_mean[active]
        g, h = log_posterior_derivs(y[active], mu[active], starts, aa, pm, prior_var)
        bad = ~np.isfinite(g) | ~np.isfinite(h)
        # an exact zero gradient is a stationary point: stop there (it is neither a lower
        # nor an upper end of the bracket)
        flat = g == 0
        pos = g > 0
        neg = g < 0
        blo_a = np.where(pos, np.maximum(blo[active], aa), blo[active])
        bhi_a = np.where(neg, np.minimum(bhi[active], aa), bhi[active])
        blo[active] = blo_a
        bhi[active] = bhi_a
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(h < 0, -g / h, np.sign(g))
        step = np.clip(step, -3.0, 3.0)
        prop = aa + step
        outside = (prop <= blo_a) | (prop >= bhi_a)
        with np.errstate(invalid="ignore"):
            mid = 0.5 * (blo_a + bhi_a)
        prop = np.where(outside & np.isfinite(mid), mid, prop)
        at_edge = ((aa >= hi) & (g > 0)) | ((aa <= lo) & (g < 0))
        prop = np.clip(prop, lo, hi)
        keep = at_edge | bad | flat
        done = keep | (np.abs(prop - aa) < tol)
        a[active] = np.where(keep, aa, prop)
        active = active[~done]
    return a


def grid_max_log_alpha(y, mu, starts, max_disp, prior_mean=None, prior_var=None, *, r_det: bool = False) -> np.ndarray:
    """DESeq2's grid search (``fitDispGrid``): 20 points, then 20 around the best.

    Returns
    -------
    ndarray, shape (n_genes,)
        The best ``a`` of the fine grid.
    """
    n = y.shape[0]
    tab = count_table(y)
    grid = np.linspace(np.log(1e-8), np.log(max_disp), 20)
    delta = grid[1] - grid[0]

    def best(points):  # points: (n, 20)
        lps = np.empty_like(points)
        for t in range(points.shape[1]):
            lps[:, t] = log_posterior(y, mu, starts, points[:, t], prior_mean, prior_var, r_det=r_det, table=tab)
        return points[np.arange(n), np.argmax(lps, axis=1)]

    coarse = best(np.broadcast_to(grid, (n, 20)).copy())
    fine = coarse[:, None] + np.linspace(-delta, delta, 20)[None, :]
    return best(fine)


def armijo_max_log_alpha(y, mu, starts, a0, prior_mean=None, prior_var=None, *, min_log_alpha: float,
                         kappa0: float = 1.0, tol: float = _TOL, maxit: int = 100, r_det: bool = False):
    """DESeq2's line search for the dispersion (``fitDisp`` in ``src/DESeq2.cpp``), vectorised.

    Steps along the gradient of the log posterior in ``a = log(alpha)`` with step length
    ``kappa`` (Armijo rule with ``epsilon = 1e-4``; ``kappa`` halved after a rejected step,
    multiplied by 1.1 (at most ``kappa0``) after an accepted one and halved after every fifth
    accepted step); proposals are kept within ``[-30, 10]``. A gene stops when an accepted step
    changes the objective by less than ``tol``, when ``a`` drops below ``min_log_alpha``, or
    after ``maxit`` proposals.

    Parameters
    ----------
    y, mu : ndarray, shape (n_genes, n_samples)
        Counts and fitted means.
    starts : ndarray of int
        Level segments.
    a0 : ndarray, shape (n_genes,)
        Starting values.
    prior_mean : ndarray, shape (n_genes,), optional
        Prior mean of ``a`` (MAP).
    prior_var : float, optional
        Prior variance of ``a``.
    min_log_alpha : float
        Lower stopping bound (``log(minDisp / 10)``).
    kappa0 : float, default 1
        Initial and largest step length.
    tol : float, default 1e-6
        Stopping tolerance on the change of the objective.
    maxit : int, default 100
        Proposals per gene.
    r_det : bool, default False
        R's double-precision determinant in the Cox-Reid term (see :func:`log_posterior`).

    Returns
    -------
    a : ndarray
        Final ``a`` per gene.
    iters : ndarray of int
        Proposals made (``maxit`` when the cap was hit: R's non-convergence).
    initial_lp, last_lp : ndarray
        Objective at the start and R's last recorded objective.
    """
    a = np.asarray(a0, dtype=float).copy()
    n = a.size
    pm = None if prior_mean is None else np.asarray(prior_mean, dtype=float)
    # working copies of the active genes' rows, compacted as genes finish
    work = {"ids": np.arange(n), "y": y, "mu": mu, "pos": np.arange(n), "tab": count_table(y)}

    def compact(active):
        if active.size < 0.5 * work["ids"].size:
            keep = np.zeros(n, dtype=bool)
            keep[active] = True
            sel = keep[work["ids"]]
            work["y"], work["mu"], work["ids"] = work["y"][sel], work["mu"][sel], work["ids"][sel]
            if work["tab"] is not None:
                work["tab"] = (work["tab"][0][sel], work["tab"][1][sel])
            work["pos"] = np.full(n, -1)
            work["pos"][work["ids"]] = np.arange(work["ids"].size)

    def rows(idx):
        if idx.size == work["ids"].size:  # every working row, in order: no copy
            return work["y"], work["mu"], work["tab"]
        j = work["pos"][idx]
        tab = None if work["tab"] is None else (work["tab"][0][j], work["tab"][1][j])
        return work["y"][j], work["mu"][j], tab

    def lp_of(idx, av):
        yy, mm, tab = rows(idx)
        return log_posterior(yy, mm, starts, av, None if pm is None else pm[idx], prior_var, r_det=r_det,
                             table=tab)

    def dlp_of(idx, av):
        yy, mm, tab = rows(idx)
        return log_posterior_derivs(yy, mm, starts, av, None if pm is None else pm[idx], prior_var,
                                    r_det=r_det, hessian=False, table=tab)[0]

    allidx = np.arange(n)
    lp = lp_of(allidx, a)
    dlp = dlp_of(allidx, a)
    initial_lp = lp.copy()
    kappa = np.full(n, float(kappa0))
    iters = np.zeros(n, dtype=int)
    n_acc = np.zeros(n, dtype=int)
    # a gradient that is not a number (R's det(X'WX) out of range) makes every later
    # proposal NaN, which R rejects until the cap: settle those genes at once
    stuck = np.isnan(dlp)
    iters[stuck] = maxit
    active = allidx[~stuck]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(maxit):
            if active.size == 0:
                break
            compact(active)
            iters[active] += 1
            aa, g, k = a[active], dlp[active], kappa[active]
            prop = aa + k * g
            k = np.where(prop < -30.0, (-30.0 - aa) / g, k)
            k = np.where(prop > 10.0, (10.0 - aa) / g, k)
            a_new = aa + k * g
            lp_new = lp_of(active, a_new)
            accept = -lp_new <= -lp[active] - k * _EPS_ARMIJO * g * g
            # rejected: halve the step
            kappa[active] = np.where(accept, k, k / 2.0)
            acc = active[accept]
            if acc.size:
                n_acc[acc] += 1
                a[acc] = a_new[accept]
                change = lp_new[accept] - lp[acc]
                small = change < tol
                low = ~small & (a[acc] < min_log_alpha)
                lp[acc[small]] = lp_new[accept][small]
                go = ~small & ~low
                cont = acc[go]
                lp[cont] = lp_new[accept][go]
                stop = np.zeros(n, dtype=bool)
                if cont.size:
                    dlp[cont] = dlp_of(cont, a[cont])
                    kk = np.minimum(kappa[cont] * 1.1, kappa0)
                    kappa[cont] = np.where(n_acc[cont] % 5 == 0, kk / 2.0, kk)
                    nan_g = cont[np.isnan(dlp[cont])]
                    iters[nan_g] = maxit
                    stop[nan_g] = True
                stop[acc[small | low]] = True
                active = active[~stop[active]]
    return a, iters, initial_lp, lp


def genewise_dispersion(y, mu, starts, alpha_init, max_disp, *, r_det: bool = False) -> np.ndarray:
    """Gene-wise Cox-Reid dispersion estimates (``estimateDispersionsGeneEst``).

    Parameters
    ----------
    y, mu : ndarray, shape (n_genes, n_samples)
        Counts and the level-mean fitted values (clipped below at 0.5).
    starts : ndarray of int
        Level segments.
    alpha_init : ndarray, shape (n_genes,)
        Starting values (:func:`rough_moments_init`).
    max_disp : float
        ``max(10, n_samples)``.
    r_det : bool, default False
        R's double-precision determinant in the Cox-Reid term (see :func:`log_posterior`).

    Returns
    -------
    ndarray, shape (n_genes,)
    """
    min_log = np.log(MIN_DISP / 10.0)
    a_hat, iters, lp0, last_lp = armijo_max_log_alpha(y, mu, starts, np.log(alpha_init), min_log_alpha=min_log,
                                                      r_det=r_det)
    est = np.minimum(np.exp(a_hat), max_disp)
    with np.errstate(invalid="ignore"):  # infinite objectives: NaN compares False, as NA in R
        no_increase = last_lp < lp0 + np.abs(lp0) / 1e6
    est[no_increase] = alpha_init[no_increase]
    # R: not converged when the cap was hit or the search stopped after one proposal; those
    # genes (unless at the lower bound) are re-estimated on the grid
    regrid = np.flatnonzero(((iters >= 100) | (iters == 1)) & (est > MIN_DISP * 10))
    if regrid.size:
        est[regrid] = np.exp(grid_max_log_alpha(y[regrid], mu[regrid], starts, max_disp, r_det=r_det))
    return np.clip(est, MIN_DISP, max_disp)


def map_dispersion(y, mu, starts, disp_gene, disp_fit, prior_var, max_disp, *, r_det: bool = False) -> np.ndarray:
    """MAP dispersion estimates with a log-normal prior centred on the trend.

    Parameters
    ----------
    y, mu : ndarray, shape (n_genes, n_samples)
        Counts and fitted means used for the gene-wise estimates.
    starts : ndarray of int
        Level segments.
    disp_gene, disp_fit : ndarray, shape (n_genes,)
        Gene-wise estimates and trend values.
    prior_var : float
        Prior variance of ``log(alpha)``.
    max_disp : float
        Upper bound.
    r_det : bool, default False
        R's double-precision determinant in the Cox-Reid term (see :func:`log_posterior`).

    Returns
    -------
    ndarray, shape (n_genes,)
        MAP estimates clipped to ``[minDisp, maxDisp]`` (outliers not yet substituted).
    """
    init = np.where(disp_gene > 0.1 * disp_fit, disp_gene, disp_fit)
    init = np.where(np.isfinite(init), init, disp_fit)
    prior_mean = np.log(disp_fit)
    a, iters, _, _ = armijo_max_log_alpha(y, mu, starts, np.log(init), prior_mean, prior_var,
                                          min_log_alpha=np.log(MIN_DISP / 10.0), r_det=r_det)
    est = np.exp(a)
    regrid = np.flatnonzero(iters >= 100)  # R: the cap was hit; grid search with the prior
    if regrid.size:
        est[regrid] = np.exp(grid_max_log_alpha(y[regrid], mu[regrid], starts, max_disp,
                                                prior_mean[regrid], prior_var, r_det=r_det))
    return np.clip(est, MIN_DISP, max_disp)
