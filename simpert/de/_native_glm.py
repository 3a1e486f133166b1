"""Negative binomial GLM fit by IRLS for a one-factor design, vectorised over genes and levels.

The design has an intercept and indicator columns for a subset ``I`` of the levels:
treatment coding (``I`` = all levels but the reference, DESeq2's standard model matrix) or
the expanded coding used with a prior on the coefficients (``I`` = all levels). A ridge
penalty ``lambda_0`` on the intercept and ``lambda_l`` on each indicator column (natural-log
scale) is included, as in DESeq2's ``fitBeta``. ``X' W X + Lambda`` is then an arrow matrix,
so each IRLS step has a closed form: with per-level sums ``W_l = sum w_j`` and
``S_l = sum w_j z_j`` and ``r_l = lambda_l / (W_l + lambda_l)`` (``r_l = 1`` for a level
without a column)::

    b_0 = sum_l r_l S_l / (lambda_0 + sum_l r_l W_l),    b_l = (S_l - W_l b_0) / (W_l + lambda_l)

and the fitted log mean of level ``l`` is ``eta_l = b_0 + b_l``. Means are clipped below at
``minmu = 0.5`` inside the iterations and in the weights, as DESeq2 does. The sandwich
covariance ``(X'WX + Lambda)^-1 X'WX (X'WX + Lambda)^-1`` of a contrast also has a closed form
(:func:`contrast_se`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ._native_nbloglik import count_table

__all__ = ["irls_one_factor", "optim_refit", "fit_quantities", "contrast_se", "LOG2E"]

LOG2E = 1.0 / np.log(2.0)


def _step(y, logsf, alpha, starts, level, eta, ind, lam0, lam, minmu):
    lmu = eta[:, level] + logsf[None, :]
    mu = np.maximum(np.exp(lmu), minmu)
    w = mu / (1.0 + alpha[:, None] * mu)
    z = np.log(mu) - logsf[None, :] + (y - mu) / mu
    W = np.add.reduceat(w, starts, axis=1)
    S = np.add.reduceat(w * z, starts, axis=1)
    r = np.where(ind[None, :], lam[None, :] / (W + lam[None, :]), 1.0)
    b0 = (r * S).sum(axis=1) / (lam0 + (r * W).sum(axis=1))
    b = np.where(ind[None, :], (S - W * b0[:, None]) / (W + lam[None, :]), 0.0)
    return b0[:, None] + b


def _nb_logdens_var(y, mu, r):
    """The ``mu``-dependent part of the NB log density with size ``r`` (per gene sums)."""
    return (r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))).sum(axis=1)


def irls_one_factor(y, sf, alpha, starts, sizes, ind, lam0, lam, *, minmu: float = 0.5,
                    maxit: int = 100, tol: float = 1e-8, eta0=None, criterion: str = "deviance",
                    large: float = 30.0):
    """Fit the level means of a one-factor NB GLM for every gene.

    The iteration and its stopping rule follow ``fitBeta`` in DESeq2's ``src/DESeq2.cpp``:
    after each step the deviance ``-2 sum log NB(y; mu, 1/alpha)`` is computed with the means
    clipped at ``minmu``; a gene stops from the second step on once
    ``|dev - dev_old| / (|dev| + 0.1) < tol``. A gene whose coefficients exceed ``large`` in
    absolute value (natural log), whose deviance is not a number or that reaches ``maxit``
    has not converged (``n_iter == maxit``); R refits those with ``optim``
    (:func:`optim_refit`).

    Parameters
    ----------
    y : ndarray, shape (n_genes, n_samples)
        Counts (samples ordered by level).
    sf : ndarray, shape (n_samples,)
        Size factors.
    alpha : ndarray, shape (n_genes,)
        Dispersions.
    starts, sizes : ndarray of int, shape (n_levels,)
        Level segments.
    ind : ndarray of bool, shape (n_levels,)
        Levels with an indicator column.
    lam0 : float
        Ridge penalty on the intercept (natural-log scale).
    lam : ndarray, shape (n_levels,)
        Ridge penalty on each indicator column (ignored where ``ind`` is False).
    minmu : float, default 0.5
        Lower clip of the fitted means inside the iterations.
    maxit : int, default 100
        Iteration cap.
    tol : float, default 1e-8
        Convergence tolerance: on the relative change of the deviance (R's ``betaTol``), or,
        with ``criterion="eta"``, on the largest change of the fitted log means.
    eta0 : ndarray, shape (n_genes, n_levels), optional
        Starting log means (default: level means of ``log(y / sf + 0.1)``, the fitted values
        of DESeq2's least-squares start).
    criterion : {"deviance", "eta"}, default "deviance"
        Stopping rule.
    large : float, default 30
        Bound on the absolute coefficients (natural log) beyond which a fit is abandoned.

    Returns
    -------
    eta : ndarray, shape (n_genes, n_levels)
        Fitted log means per level (natural log, size factor 1).
    n_iter : ndarray of int, shape (n_genes,)
        Iterations used (``maxit`` means no convergence).
    """
    if criterion not in ("deviance", "eta"):
        raise ValueError(f"parameter 'criterion' must be 'deviance' or 'eta'; got {criterion!r}")
    g, _ = y.shape
    level = np.repeat(np.arange(len(starts)), sizes)
    logsf = np.log(sf)
    lam = np.asarray(lam, dtype=float)
    if eta0 is None:
        eta = np.add.reduceat(np.log(y / sf[None, :] + 0.1), starts, axis=1) / sizes[None, :]
    else:
        eta = np.array(eta0, dtype=float)
    n_iter = np.full(g, maxit)
    active = np.arange(g)
    r_all = 1.0 / alpha[:, None]
    dev_old = np.zeros(g)
    if criterion == "deviance":  # the mu-free part of the log density, once
        tab = count_table(y)
        if tab is None:
            dev_const = (gammaln(y + r_all) - gammaln(y + 1.0)).sum(axis=1)
        else:
            vals, mult = tab
            dev_const = (mult * (gammaln(vals + r_all) - gammaln(vals + 1.0))).sum(axis=1)
        dev_const -= y.shape[1] * gammaln(r_all[:, 0])
    for it in range(maxit):
        if active.size == 0:
            break
        new = _step(y[active], logsf, alpha[active], starts, level, eta[active], ind, lam0, lam, minmu)
        if criterion == "eta":
            delta = np.max(np.abs(new - eta[active]), axis=1)
            eta[active] = new
            done = ~(delta >= tol)
            n_iter[active[done]] = it + 1
            active = active[~done]
            continue
        b0 = new[:, 0] if not ind[0] else None
        coefs = new - (new[:, :1] if not ind[0] else 0.0)
        too_large = np.abs(coefs[:, np.flatnonzero(ind)]).max(axis=1, initial=0.0) > large
        if b0 is not None:
            too_large |= np.abs(b0) > large
        else:  # expanded coding: the intercept is not identified from eta; use the level sums
            too_large |= np.abs(new).max(axis=1) > 2 * large
        eta[active] = new
        mu = np.maximum(np.exp(new[:, level] + logsf[None, :]), minmu)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = -2.0 * (dev_const[active] + _nb_logdens_var(y[active], mu, r_all[active]))
            conv_test = np.abs(dev - dev_old[active]) / (np.abs(dev) + 0.1)
        dev_old[active] = dev
        failed = too_large | np.isnan(conv_test)
        conv = ~failed & (it > 0) & (conv_test < tol)
        n_iter[active[conv]] = it + 1
        n_iter[active[failed]] = maxit
        active = active[~(conv | failed)]
    return eta, n_iter


def fit_quantities(y, sf, alpha, starts, sizes, eta, *, minmu: float = 0.5):
    """Fitted means, weights and hat diagonals at the fitted level means.

    Returns
    -------
    mu : ndarray, shape (n_genes, n_samples)
        Fitted means ``sf * exp(eta)`` (not clipped; DESeq2's ``assays(dds)$mu``).
    W : ndarray, shape (n_genes, n_levels)
        Per-level sums of the IRLS weights ``mu / (1 + alpha mu)`` with ``mu`` clipped at
        ``minmu``.
    H : ndarray, shape (n_genes, n_samples)
        Hat diagonals ``w_j / W_l`` (the ridge term, at most 1e-6 of ``W``, is left out).
    """
    level = np.repeat(np.arange(len(starts)), sizes)
    mu = np.exp(eta[:, level]) * sf[None, :]
    mc = np.maximum(mu, minmu)
    w = mc / (1.0 + alpha[:, None] * mc)
    W = np.add.reduceat(w, starts, axis=1)
    H = w / W[:, level]
    return mu, W, H


def contrast_se(W, ind, lam0, lam, i, c: int = 0):
    """Standard error of ``eta_i - eta_c`` (natural log) under the ridge-penalised fit.

    Parameters
    ----------
    W : ndarray, shape (n_genes, n_levels)
        Per-level weight sums.
    ind : ndarray of bool, shape (n_levels,)
        Levels with an indicator column.
    lam0 : float
        Intercept penalty.
    lam : ndarray, shape (n_levels,)
        Column penalties.
    i : ndarray of int, shape (k,)
        Levels tested (each must have a column).
    c : int, default 0
        Reference level.

    Returns
    -------
    ndarray, shape (k, n_genes)
        ``sqrt(v' X'WX v)`` with ``v = (X'WX + Lambda)^-1 contrast``.
    """
    lam = np.asarray(lam, dtype=float)
    lamb = np.where(ind, lam, 0.0)[None, :]
    q = np.where(ind[None, :], W / (W + lamb), 0.0)
    r = np.where(ind[None, :], lamb / (W + lamb), 1.0)
    D = lam0 + (W * r).sum(axis=1)
    T = (W * r * r).sum(axis=1)
    i = np.asarray(i)
    qi, ri, Wi, li = q[:, i].T, r[:, i].T, W[:, i].T, lamb[0, i][:, None]
    if ind[c]:
        qc, rc, Wc, lc = q[:, c][None, :], r[:, c][None, :], W[:, c][None, :], lamb[0, c]
        v0 = -(qi - qc) / D[None, :]
        var = v0 ** 2 * T[None, :] + 2 * v0 * (qi * ri - qc * rc) + qi / (Wi + li) + qc / (Wc + lc)
    else:
        v0 = -qi / D[None, :]
        var = v0 ** 2 * T[None, :] + 2 * v0 * (qi * ri) + qi / (Wi + li)
    return np.sqrt(np.maximum(var, 0.0))


def optim_refit(y, sf, alpha, starts, sizes, eta, eta_start, *, lam_log2=1e-6, large: float = 30.0,
                expanded: bool = False):
    """Refit genes whose IRLS did not converge by bounded L-BFGS-B, as R does.

    Follows ``fitNbinomGLMsOptim`` (DESeq2's ``R/core.R``): the negative log posterior of the
    coefficients ``p`` (log2 scale) -- NB log likelihood with unclipped means
    ``sf * 2^(X p)`` plus a ``N(0, 1 / lam_log2)`` prior on every coefficient -- is minimised
    with ``L-BFGS-B`` within ``[-large, large]`` (R's ``optim`` defaults: ``factr = 1e7``,
    ``pgtol = 0``, 100 iterations, central-difference gradients with step 1e-3), starting from
    the IRLS result when all its coefficients lie within the bounds and from the
    least-squares start otherwise. Where the likelihood is flat along a coefficient (a level
    with only zeros) the optimiser stops somewhere on the plateau, and there its stopping
    point can differ from R's (SciPy's L-BFGS-B is a later version of the same algorithm).

    Parameters
    ----------
    y : ndarray, shape (n_genes, n_samples)
        Counts of the genes to refit.
    sf : ndarray, shape (n_samples,)
        Size factors.
    alpha : ndarray, shape (n_genes,)
        Dispersions.
    starts, sizes : ndarray of int
        Level segments.
    eta : ndarray, shape (n_genes, n_levels)
        Log means of the unconverged IRLS fit.
    eta_start : ndarray, shape (n_genes, n_levels)
        Log means of the IRLS start.
    lam_log2 : float or ndarray, default 1e-6
        Prior precision of each coefficient on the log2 scale (intercept first).
    large : float, default 30
        Bound of the coefficients (log2 scale).
    expanded : bool, default False
        Design with an intercept and a column for every level (the coefficients of a level
        mean are not identified by ``eta`` alone; the ridge-optimal split is used as the
        start) instead of treatment coding.

    Returns
    -------
    eta : ndarray, shape (n_genes, n_levels)
        Refitted log means per level (natural log).
    converged : ndarray of bool, shape (n_genes,)
        The optimiser reported convergence.
    """
    from scipy.optimize import minimize

    L = len(starts)
    level = np.repeat(np.arange(L), sizes)
    n_par = L + 1 if expanded else L
    X = np.zeros((level.size, n_par))
    X[:, 0] = 1.0
    if expanded:
        X[np.arange(level.size), 1 + level] = 1.0
    else:
        X[np.arange(level.size), level] = 1.0  # column l > 0: indicator of level l
    lam = np.broadcast_to(np.asarray(lam_log2, dtype=float), (n_par,)).copy()
    ln2 = np.log(2.0)
    out = np.array(eta, dtype=float)
    conv = np.zeros(y.shape[0], dtype=bool)
    log_prior_const = float(np.sum(-0.5 * np.log(2.0 * np.pi) + 0.5 * np.log(lam)))

    def coefs(e):
        if not expanded:
            return np.r_[e[0], e[1:] - e[0]]
        lv = lam[1:] * ln2 ** 2  # natural-log scale penalties
        b0 = float(np.sum(lv * e) / (lam[0] * ln2 ** 2 + lv.sum()))
        return np.r_[b0, e - b0]

    for i in range(y.shape[0]):
        yi, r = y[i], 1.0 / alpha[i]
        # R's objective includes every constant of dnbinom and dnorm (they enter the
        # optimiser's relative stopping rule)
        const = float(np.sum(gammaln(yi + r) - gammaln(r) - gammaln(yi + 1.0))) + log_prior_const
        coef = coefs(eta[i]) * LOG2E
        if not np.all(np.abs(coef) < large):
            coef = coefs(eta_start[i])  # natural-log start, as R

        def f(p, yi=yi, r=r, const=const):
            mu = sf * np.exp(ln2 * (X @ p))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                ll = np.sum(r * np.log(r / (r + mu)) + np.where(yi > 0, yi * np.log(mu / (r + mu)), 0.0))
            val = -(ll + const) + 0.5 * np.dot(lam * p, p)
            return val if np.isfinite(val) else 1e300

        def grad(p, f=f):
            # R's optim without a gradient: central differences with ndeps = 1e-3, shortened
            # at the bounds
            g = np.empty_like(p)
            for k in range(p.size):
                up, dn = p.copy(), p.copy()
                up[k] = min(p[k] + 1e-3, large)
                dn[k] = max(p[k] - 1e-3, -large)
                g[k] = (f(up) - f(dn)) / (up[k] - dn[k])
            return g

        res = minimize(f, coef, jac=grad, method="L-BFGS-B", bounds=[(-large, large)] * n_par,
                       options={"maxiter": 100, "ftol": 1e7 * np.finfo(float).eps, "gtol": 0.0})
        p = res.x
        out[i] = ln2 * (p[0] + p[1:]) if expanded else ln2 * np.r_[p[0], p[0] + p[1:]]
        conv[i] = bool(res.success)
    return out, conv
