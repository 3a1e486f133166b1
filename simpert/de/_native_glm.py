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

__all__ = ["irls_one_factor", "fit_quantities", "contrast_se", "LOG2E"]

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


def irls_one_factor(y, sf, alpha, starts, sizes, ind, lam0, lam, *, minmu: float = 0.5,
                    maxit: int = 100, tol: float = 1e-10, eta0=None):
    """Fit the level means of a one-factor NB GLM for every gene.

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
    tol : float, default 1e-10
        Convergence tolerance on the change of the fitted log means.
    eta0 : ndarray, shape (n_genes, n_levels), optional
        Starting log means (default: level means of ``log(y / sf + 0.1)``, the fitted values
        of DESeq2's least-squares start).

    Returns
    -------
    eta : ndarray, shape (n_genes, n_levels)
        Fitted log means per level (natural log, size factor 1).
    n_iter : ndarray of int, shape (n_genes,)
        Iterations used (``maxit`` means no convergence).
    """
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
    for it in range(maxit):
        if active.size == 0:
            break
        new = _step(y[active], logsf, alpha[active], starts, level, eta[active], ind, lam0, lam, minmu)
        delta = np.max(np.abs(new - eta[active]), axis=1)
        eta[active] = new
        done = ~(delta >= tol)
        n_iter[active[done]] = it + 1
        active = active[~done]
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
