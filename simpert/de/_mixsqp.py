"""Maximum-likelihood mixture weights on a fixed likelihood matrix: mix-SQP and EM.

Both solvers maximise the (optionally weighted and penalised) mixture log-likelihood

.. math::

    \\ell(\\pi) = \\sum_j w_j \\log \\sum_k L_{jk} \\pi_k + \\sum_k (\\lambda_k - 1) \\log \\pi_k

over the probability simplex, where :math:`L_{jk}` is the likelihood of observation
:math:`j` under mixture component :math:`k` and :math:`\\lambda_k \\ge 1` are the parameters
of a Dirichlet penalty (ashr's ``prior``). The penalty is folded into the likelihood as
pseudo-observations: one extra row :math:`e_k` with weight :math:`\\lambda_k - 1` per
penalised component, exactly as ashr does before calling mix-SQP.

mix-SQP (Kim, Carbonetto, Stephens and Anitescu 2020, *J. Comput. Graph. Stat.* 29:2) works
on the equivalent problem

.. math::

    \\min_{x \\ge 0}\\; f(x) = -\\sum_j \\tilde w_j \\log (L x)_j + \\sum_k x_k,
    \\qquad \\tilde w = w / \\textstyle\\sum_j w_j,

whose solution lies on the simplex. Each outer iteration forms the gradient and the
Hessian :math:`H = L^\\top \\operatorname{diag}(\\tilde w / (Lx)^2) L`, solves the
non-negatively constrained quadratic subproblem with an active-set method, and takes a
backtracking (Armijo) line search along the resulting direction. The Hessian is built from
a thin QR factor of ``L`` when ``low_rank=True`` (the "low-rank" option of the paper, useful
when ``n`` is large and ``L`` is numerically of low rank).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

try:  # small dense products thrash when BLAS threads compete for few cores
    from threadpoolctl import threadpool_limits as _threadpool_limits
except ImportError:  # pragma: no cover - optional
    _threadpool_limits = None

from .._validation import ArrayLike, Integer, Interval, OneOf, check, fail

__all__ = ["MixSQPResult", "mixsqp", "mixem", "mixture_loglik", "single_blas_thread"]


@dataclass(frozen=True)
class MixSQPResult:
    """Mixture weights fitted by :func:`mixsqp` or :func:`mixem`.

    Attributes
    ----------
    x : ndarray, shape (k,)
        Fitted mixture weights (non-negative, summing to one).
    objective : float
        Penalised, weighted log-likelihood at ``x`` (natural log).
    n_iter : int
        Outer iterations used.
    converged : bool
        Whether the convergence criterion was met before ``max_iter``.
    max_dual_residual : float
        Largest violation of the first-order optimality conditions at ``x`` (mix-SQP's
        convergence measure): ``max(-min(grad), max(|grad_k| for x_k > 0))`` with ``grad``
        the gradient of the normalised objective ``f`` above.
    method : str
        "mixsqp" or "em".
    """

    x: np.ndarray
    objective: float
    n_iter: int
    converged: bool
    max_dual_residual: float
    method: str


def single_blas_thread():
    """Context manager that runs BLAS on one thread (a no-op without threadpoolctl).

    The products in mix-SQP are small (n x k with k ~ 20-60); multi-threaded BLAS makes
    them slower, by orders of magnitude on a loaded machine.
    """
    if _threadpool_limits is None:  # pragma: no cover - optional dependency
        return contextlib.nullcontext()
    return _threadpool_limits(limits=1, user_api="blas")


def _prepare(L, w, prior, name="L"):
    L = np.asarray(L, dtype=np.float64)
    if L.ndim != 2 or L.shape[0] < 1 or L.shape[1] < 1:
        fail(name, "a non-empty 2-d array (observations x components)", L)
    if not np.all(np.isfinite(L)) or np.any(L < 0):
        fail(name, "a finite, non-negative likelihood matrix", L)
    n, k = L.shape
    if w is None:
        w = np.ones(n)
    else:
        check("w", w, ArrayLike(ndim=1, low=0.0))
        w = np.asarray(w, dtype=np.float64)
        if w.shape[0] != n:
            fail("w", f"a weight vector of length {n} (rows of L)", w)
    if prior is not None:
        check("prior", prior, ArrayLike(ndim=1, low=1.0))
        prior = np.asarray(prior, dtype=np.float64)
        if prior.shape[0] != k:
            fail("prior", f"a vector of length {k} (columns of L) with entries >= 1", prior)
        extra = np.flatnonzero(prior != 1.0)
        if extra.size:
            L = np.vstack([L, np.eye(k)[extra]])
            w = np.concatenate([w, prior[extra] - 1.0])
    keep = w > 0
    if not np.all(keep):
        L, w = L[keep], w[keep]
    if L.shape[0] == 0 or w.sum() <= 0:
        fail("w", "weights with a positive sum", w)
    return L, w


def mixture_loglik(L, x, *, w=None, prior=None) -> float:
    """Penalised, weighted mixture log-likelihood ``sum_j w_j log(L x)_j + sum (prior-1) log x``.

    Parameters
    ----------
    L : array_like, shape (n, k)
        Component likelihoods.
    x : array_like, shape (k,)
        Mixture weights.
    w : array_like, shape (n,), optional
        Observation weights (default all one).
    prior : array_like, shape (k,), optional
        Dirichlet penalty parameters (default no penalty).

    Returns
    -------
    float
        The objective (``-inf`` where a row or penalised component has zero likelihood).
    """
    L2, w2 = _prepare(L, w, prior)
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return float(w2 @ np.log(L2 @ x))


def _objective(L, wn, x, eps):
    u = L @ x + eps
    return float(-(wn @ np.log(u)) + x.sum())


def _activeset_qp(H, b, y0, *, max_iter, tol):
    """Minimise 0.5 y'Hy + b'y subject to y >= 0 by a primal active-set method.

    Starts from the feasible point ``y0``; the free set is its support (at least the
    component with the most negative gradient).
    """
    k = b.shape[0]
    y = y0.copy()
    free = y > 0
    if not np.any(free):
        free[np.argmin(H @ y + b)] = True
    for _ in range(max_iter):
        idx = np.flatnonzero(free)
        z = np.zeros(k)
        try:
            z[idx] = np.linalg.solve(H[np.ix_(idx, idx)], -b[idx])
        except np.linalg.LinAlgError:
            z[idx] = np.linalg.lstsq(H[np.ix_(idx, idx)], -b[idx], rcond=None)[0]
        if np.all(z[idx] >= 0):
            y = z
            grad = H @ y + b
            grad[free] = np.inf
            j = int(np.argmin(grad))
            if grad[j] >= -tol:
                return y
            free[j] = True
        else:
            neg = idx[z[idx] < 0]
            steps = y[neg] / (y[neg] - z[neg])
            alpha = float(np.min(steps))
            y = y + alpha * (z - y)
            hit = neg[steps <= alpha * (1 + 1e-12)]
            y[hit] = 0.0
            y[y < 0] = 0.0
            free[hit] = False
            if not np.any(free):
                free[np.argmin(H @ y + b)] = True
    return y


def mixsqp(
    L,
    *,
    w=None,
    prior=None,
    x0=None,
    tol: float = 1e-8,
    max_iter: int = 1000,
    max_iter_qp: int = 100,
    eps: float = 1e-8,
    low_rank: bool = False,
) -> MixSQPResult:
    """Fit mixture weights by mix-SQP (sequential quadratic programming).

    Parameters
    ----------
    L : array_like, shape (n, k)
        Likelihood matrix, ``L[j, k]`` = likelihood of observation ``j`` under component ``k``
        (rows may be rescaled by any positive constant without changing the solution).
    w : array_like, shape (n,), optional
        Non-negative observation weights (default all one).
    prior : array_like, shape (k,), optional
        Dirichlet penalty parameters ``>= 1`` (ashr's ``prior``; 1 = no penalty).
    x0 : array_like, shape (k,), optional
        Starting weights (default uniform); zeros are replaced by a small positive value.
    tol : float, default 1e-8
        Convergence tolerance on the largest dual residual (mixsqp's ``convtol.sqp``).
    max_iter : int, default 1000
        Maximum SQP iterations.
    max_iter_qp : int, default 100
        Maximum active-set iterations per quadratic subproblem.
    eps : float, default 1e-8
        Small constant added to ``L x`` in the objective, as in mixsqp (``eps``).
    low_rank : bool, default False
        Form the Hessian through a thin QR factorisation of ``L`` (faster when
        ``n >> k``; same solution).

    Returns
    -------
    MixSQPResult
        Weights on the simplex and convergence information.

    Notes
    -----
    The rows of ``L`` are scaled to a maximum of one (mixsqp's ``normalize.rows``) and the
    weights to sum one; the reported ``objective`` is on the original scale.
    """
    check("tol", tol, Interval(0, None, closed="neither"))
    check("max_iter", max_iter, Integer(1))
    check("max_iter_qp", max_iter_qp, Integer(1))
    check("eps", eps, Interval(0, None))
    check("low_rank", low_rank, OneOf((True, False)))
    with single_blas_thread():
        return _mixsqp(L, w=w, prior=prior, x0=x0, tol=tol, max_iter=max_iter,
                       max_iter_qp=max_iter_qp, eps=eps, low_rank=low_rank)


def _mixsqp(L, *, w=None, prior=None, x0=None, tol=1e-8, max_iter=1000, max_iter_qp=100,
            eps=1e-8, low_rank=False) -> MixSQPResult:
    """mix-SQP without argument checks or thread control (see :func:`mixsqp`)."""
    L0, w0 = _prepare(L, w, prior)
    n, k = L0.shape
    rowmax = L0.max(axis=1)
    if np.any(rowmax <= 0):
        fail("L", "a matrix with a positive entry in every row of positive weight", L)
    Ls = L0 / rowmax[:, None]
    wn = w0 / w0.sum()
    if x0 is None:
        x = np.full(k, 1.0 / k)
    else:
        check("x0", x0, ArrayLike(ndim=1, low=0.0))
        x = np.asarray(x0, dtype=np.float64).copy()
        if x.shape[0] != k or x.sum() <= 0:
            fail("x0", f"a non-negative vector of length {k} with a positive sum", x0)
        x = x / x.sum()
        if np.any(Ls @ x <= 0):  # the start must give every observation positive likelihood
            x = np.maximum(x, 1e-6 / k)
            x /= x.sum()
    Q = R = None
    if low_rank and n > k:
        Q, R = np.linalg.qr(Ls, mode="reduced")
    fx = _objective(Ls, wn, x, eps)
    converged = False
    it = 0
    resid = np.inf
    for it in range(1, max_iter + 1):
        u = Ls @ x + eps
        d = wn / u
        g = -(Ls.T @ d) + 1.0
        resid = _dual_residual(g, x)
        if resid <= tol:
            converged = True
            it -= 1
            break
        if Q is not None:
            QD = Q * (np.sqrt(wn) / u)[:, None]
            M = QD.T @ QD
            H = R.T @ M @ R
        else:
            LD = Ls * (np.sqrt(wn) / u)[:, None]
            H = LD.T @ LD
        H[np.diag_indices(k)] += eps
        b = g - H @ x
        y = _activeset_qp(H, b, x, max_iter=max_iter_qp, tol=tol * 1e-2)
        p = y - x
        # Armijo backtracking line search (mixsqp: suffdecr = 0.01, stepsizereduce = 0.75).
        slope = float(g @ p)
        step = 1.0
        while True:
            xn = x + step * p
            fn = _objective(Ls, wn, xn, eps)
            if fn <= fx + 0.01 * step * slope or step < 1e-10:
                break
            step *= 0.75
        if step < 1e-10 and fn > fx:
            break
        x, fx = xn, fn
        x[x < 0] = 0.0
    xs = x / x.sum()
    obj = mixture_loglik(L, xs, w=w, prior=prior)
    return MixSQPResult(x=xs, objective=obj, n_iter=it, converged=converged,
                        max_dual_residual=float(resid), method="mixsqp")


def _dual_residual(g, x):
    viol_neg = max(0.0, -float(np.min(g)))
    act = x > 1e-8 * x.max()
    viol_pos = float(np.max(np.abs(g[act]))) if np.any(act) else 0.0
    return max(viol_neg, viol_pos)


def mixem(
    L,
    *,
    w=None,
    prior=None,
    x0=None,
    tol: float = 1e-8,
    max_iter: int = 10000,
) -> MixSQPResult:
    """Fit mixture weights by the EM fixed-point iteration (ashr's ``mixEM`` without SQUAREM).

    Parameters
    ----------
    L : array_like, shape (n, k)
        Likelihood matrix.
    w : array_like, shape (n,), optional
        Non-negative observation weights (default all one).
    prior : array_like, shape (k,), optional
        Dirichlet penalty parameters ``>= 1``.
    x0 : array_like, shape (k,), optional
        Starting weights (default uniform).
    tol : float, default 1e-8
        Stop when the objective per unit weight improves by less than ``tol``.
    max_iter : int, default 10000
        Maximum EM iterations (EM converges slowly on fine grids; prefer :func:`mixsqp`).

    Returns
    -------
    MixSQPResult
        Weights on the simplex and convergence information.
    """
    check("tol", tol, Interval(0, None, closed="neither"))
    check("max_iter", max_iter, Integer(1))
    L0, w0 = _prepare(L, w, prior)
    n, k = L0.shape
    Ls = L0 / L0.max(axis=1, keepdims=True)
    wsum = w0.sum()
    x = np.full(k, 1.0 / k) if x0 is None else np.asarray(x0, dtype=np.float64) / np.sum(x0)
    old = -np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        u = Ls @ x
        obj = float(w0 @ np.log(u)) / wsum
        if obj - old < tol and it > 1:
            converged = True
            break
        old = obj
        x = x * (Ls.T @ (w0 / u)) / wsum
        x /= x.sum()
    u = Ls @ x
    g = -(Ls.T @ (w0 / wsum / u)) + 1.0
    return MixSQPResult(x=x, objective=mixture_loglik(L, x, w=w, prior=prior), n_iter=it,
                        converged=converged, max_dual_residual=_dual_residual(g, x), method="em")
