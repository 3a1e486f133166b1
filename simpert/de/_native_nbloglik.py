"""The Cox-Reid adjusted negative binomial log posterior of a dispersion, and its derivatives.

For gene ``i`` with counts ``y_ij``, fitted means ``mu_ij`` and ``a = log(alpha)`` (DESeq2's
``log_posterior`` in ``src/DESeq2.cpp``)::

    ll(a) = sum_j lgamma(y + 1/alpha) - lgamma(1/alpha) - y log(mu + 1/alpha)
                  - (1/alpha) log(1 + mu alpha)
    cr(a) = -1/2 log det(X' W X),   W = diag(mu / (1 + alpha mu))
    prior(a) = -(a - a0)^2 / (2 s^2)        (MAP only)

With a one-factor design in cell-means coding ``X' W X`` is diagonal, so
``log det = sum_l log(sum_{j in level l} w_j)``: every term is an elementwise pass over the
counts followed by per-level sums (``numpy.add.reduceat`` over contiguous level segments).
First and second derivatives in ``a`` are exact, which lets the optimiser use Newton steps.
With covariates, ``starts`` is a design object with ``cr_logdet(w)`` and ``cr_trace(w)``
(``log det(X'WX)`` and ``tr((X'WX)^-1 X' W^2 X)`` per gene; see ``_native_covariates``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, polygamma

__all__ = ["trigamma", "count_table", "log_posterior", "log_posterior_derivs"]


def trigamma(x: np.ndarray) -> np.ndarray:
    """Trigamma function for positive arguments (recurrence below 6, asymptotic series above).

    Asymptotic series to the x^-11 term (Bernoulli numbers up to B10): relative error below
    2e-10; about ten times faster than ``scipy.special.polygamma(1, x)``.
    """
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    small = x < 6.0
    if small.any():
        xs = x[small].copy()
        acc = np.zeros_like(xs)
        for _ in range(7):
            m = xs < 6.0
            if not m.any():
                break
            acc[m] += 1.0 / (xs[m] * xs[m])
            xs[m] += 1.0
        xx = x.copy()
        xx[small] = xs
        out[small] = acc
    else:
        xx = x
    inv = 1.0 / xx
    inv2 = inv * inv
    series = inv + inv2 * (0.5 + inv * (1.0 / 6.0 + inv2 * (-1.0 / 30.0 + inv2 * (1.0 / 42.0 + inv2 * (-1.0 / 30.0 + inv2 * (5.0 / 66.0))))))
    out += series
    return out


def _level_sums(v: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(v, starts, axis=1)


# DESeq2 forms det(X'WX) as a double (src/DESeq2.cpp): below the smallest subnormal it is 0
# and the Cox-Reid term -log(det)/2 is +Inf; above the largest double it is Inf and the term
# -Inf (both happen with many levels, where det is a product of ~100 weight sums); the
# derivative, det * trace(...) / det, is then NaN. R's line search and grid act on those
# values; ``r_det=True`` reproduces them.
_LOG_DET_MIN = float(np.log(np.nextafter(0.0, 1.0)) - np.log(2.0))
_LOG_DET_MAX = float(np.log(np.finfo(float).max))


def _cr_term(logdet: np.ndarray) -> np.ndarray:
    out = -0.5 * logdet
    out = np.where(logdet < _LOG_DET_MIN, np.inf, out)
    return np.where(logdet > _LOG_DET_MAX, -np.inf, out)


def count_table(y: np.ndarray):
    """Distinct counts of every row and their multiplicities, padded to a common width.

    ``sum_j f(y_ij) = sum_k mult_ik f(vals_ik)`` for any ``f``; with many samples and few
    distinct counts per gene this makes the gamma-function sums of the likelihood far
    cheaper. Returns None when it would not save at least half of the work.

    Returns
    -------
    (vals, mult) : tuple of ndarray, shape (n_genes, n_distinct), or None
    """
    g, m = y.shape
    if g == 0 or m < 8:
        return None
    s = np.sort(y, axis=1)
    new = np.ones(s.shape, dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    rank = np.cumsum(new, axis=1) - 1
    width = int(rank[:, -1].max()) + 1
    if width > m // 2:
        return None
    flat = (np.arange(g)[:, None] * width + rank).ravel()
    mult = np.bincount(flat, minlength=g * width).astype(float).reshape(g, width)
    vals = np.zeros(g * width)
    vals[flat] = s.ravel()
    return vals.reshape(g, width), mult


def _row_sum(f, y, r, table):
    """``sum_j f(y_ij + r_i)`` per row, through the count table when there is one."""
    if table is None:
        return f(y + r).sum(axis=1)
    vals, mult = table
    return (mult * f(vals + r)).sum(axis=1)


def log_posterior(y, mu, starts, a, prior_mean=None, prior_var=None, *, use_cr: bool = True,
                  r_det: bool = False, table=None) -> np.ndarray:
    """Log posterior (or Cox-Reid adjusted log likelihood) at ``a = log(alpha)`` per gene.

    Parameters
    ----------
    y, mu : ndarray, shape (n_genes, n_samples)
        Counts and fitted means (samples ordered by level).
    starts : ndarray of int
        First sample of each level.
    a : ndarray, shape (n_genes,)
        Log dispersions.
    prior_mean : ndarray, shape (n_genes,), optional
        Prior mean of ``a`` (MAP); no prior when None.
    prior_var : float, optional
        Prior variance of ``a``.
    use_cr : bool, default True
        Include the Cox-Reid term.
    r_det : bool, default False
        Form ``det(X'WX)`` in double precision as R does (+Inf / -Inf term when it under- or
        overflows); by default the log determinant is summed from the log weight sums.
    table : tuple, optional
        :func:`count_table` of ``y`` (same values, less work).

    Returns
    -------
    ndarray, shape (n_genes,)
    """
    alpha = np.exp(a)[:, None]
    r = 1.0 / alpha
    t = mu * alpha
    lt = np.log1p(t)  # log(mu + r) = log(r) + log1p(mu alpha)
    ll = _row_sum(gammaln, y, r, table) - y.shape[1] * gammaln(r[:, 0])
    ll -= y.sum(axis=1) * np.log(r[:, 0]) + ((y + r) * lt).sum(axis=1)
    if use_cr:
        w = mu / (1.0 + t)
        if hasattr(starts, "cr_logdet"):  # a design with covariates (see _native_covariates)
            ll -= 0.5 * starts.cr_logdet(w)
        else:
            logdet = np.log(_level_sums(w, starts)).sum(axis=1)
            ll += _cr_term(logdet) if r_det else -0.5 * logdet
    if prior_mean is not None:
        ll -= 0.5 * (a - prior_mean) ** 2 / prior_var
    return ll


def log_posterior_derivs(y, mu, starts, a, prior_mean=None, prior_var=None, *, use_cr: bool = True,
                         r_det: bool = False, hessian: bool = True, table=None):
    """First and second derivatives of :func:`log_posterior` with respect to ``a``.

    With ``r_det`` they are NaN where R's double-precision ``det(X'WX)`` under- or overflows.
    With ``hessian=False`` only the gradient is computed (the second element is None);
    ``table`` is :func:`count_table` of ``y``.

    Returns
    -------
    grad, hess : ndarray, shape (n_genes,)
    """
    alpha1 = np.exp(a)
    alpha = alpha1[:, None]
    r1 = 1.0 / alpha1
    r = r1[:, None]
    m = y.shape[1]
    t = mu * alpha
    inv_mur = alpha / (1.0 + t)  # 1 / (mu + r)
    dmy = (mu - y) * inv_mur
    # H(r) = d ll / d r, H'(r) = d^2 ll / d r^2; log(mu + r) = log(r) + log1p(mu alpha)
    H = _row_sum(digamma, y, r, table) - m * digamma(r1) - np.log1p(t).sum(axis=1) + dmy.sum(axis=1)
    d1 = -(r1 ** 2) * H
    if hessian:
        Hp = (_row_sum(trigamma, y, r, table) - m * polygamma(1, r1) + m * alpha1 - inv_mur.sum(axis=1)
              - (dmy * inv_mur).sum(axis=1))
        d2 = 2.0 * r1 ** 3 * H + r1 ** 4 * Hp
    if use_cr and hasattr(starts, "cr_logdet"):  # a design with covariates: gradient only
        if hessian:
            raise NotImplementedError("the Hessian of the Cox-Reid term is available for one-factor designs only")
        d1 = d1 + 0.5 * starts.cr_trace(mu / (1.0 + t))
    elif use_cr:
        w = mu / (1.0 + t)
        w2 = w * w
        B = _level_sums(w, starts)
        A = _level_sums(w2, starts)
        d1 = d1 + 0.5 * (A / B).sum(axis=1)
        if hessian:
            C = _level_sums(w2 * w, starts)
            d2 = d2 + 0.5 * ((A / B) ** 2 - 2.0 * C / B).sum(axis=1)
        if r_det:
            logdet = np.log(B).sum(axis=1)
            out_of_range = (logdet < _LOG_DET_MIN) | (logdet > _LOG_DET_MAX)
            d1 = np.where(out_of_range, np.nan, d1)
            if hessian:
                d2 = np.where(out_of_range, np.nan, d2)
    grad = alpha1 * d1
    if prior_mean is not None:
        grad = grad - (a - prior_mean) / prior_var
    if not hessian:
        return grad, None
    hess = alpha1 ** 2 * d2 + alpha1 * d1
    if prior_mean is not None:
        hess = hess - 1.0 / prior_var
    return grad, hess
