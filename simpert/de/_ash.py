"""Adaptive shrinkage (Stephens 2017, ashr): a unimodal prior fitted to noisy effect estimates.

Each estimate ``bhat_j`` with standard error ``s_j`` is modelled as ``bhat_j ~ N(beta_j, s_j^2)``
with ``beta_j ~ g``, a mixture on a fixed grid of scales:

- ``mixcompdist="normal"``: ``g = sum_k pi_k N(0, sigma_k^2)``;
- ``"uniform"``: ``g = sum_k pi_k U[-sigma_k, sigma_k]``;
- ``"halfuniform"``: ``g = sum_k pi_k U[-sigma_k, 0] + sum_k pi'_k U[0, sigma_k]`` (the null
  component is not duplicated), optionally truncated to ``grange`` as ashr does.

A point mass at zero (``sigma = 0``) is included when ``pointmass=True``. The grid follows
ashr's defaults: ``sigma_min = min(s)/10``, ``sigma_max = 2 sqrt(max(bhat^2 - s^2))`` (or
``8 sigma_min`` when no estimate exceeds its standard error) and ``sigma_k = sigma_max
mult^{-m..0}``. The weights maximise the marginal likelihood with ashr's Dirichlet penalty
("nullbiased": 10 on the null component; "uniform": none) by mix-SQP or EM
(:mod:`simpert.de._mixsqp`). Posterior summaries are closed forms per component: for a
normal component the posterior is ``N(bhat sigma^2/(sigma^2+s^2), sigma^2 s^2/(sigma^2+s^2))``,
for a uniform component a truncated normal. Everything is vectorised over estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import log_ndtr, ndtr

from .._validation import ArrayLike, Instance, Integer, Interval, OneOf, check, fail
from ._mixsqp import _mixsqp, mixem, single_blas_thread

__all__ = ["AshPrior", "AshResult", "AshSummary", "ash", "ash_grid", "ash_loglik_matrix"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- the prior
@dataclass(frozen=True)
class AshPrior:
    """A fitted (or given) mixture prior ``g``.

    Parameters
    ----------
    kind : {"normal", "uniform"}
        Component family: zero-centred normals with standard deviations ``scale``, or
        uniforms on ``[a, b]`` (a component with ``a == b`` is a point mass).
    pi : ndarray, shape (K,)
        Mixture weights.
    scale : ndarray, shape (K,), optional
        Standard deviations of the normal components (0 = point mass at zero).
    a, b : ndarray, shape (K,), optional
        Lower and upper ends of the uniform components.
    """

    kind: str
    pi: np.ndarray
    scale: np.ndarray | None = None
    a: np.ndarray | None = None
    b: np.ndarray | None = None

    def _comp_moment(self, order: int, center: float) -> np.ndarray:
        """E[(X - center)^order] for each component."""
        if self.kind == "normal":
            # X ~ N(0, s^2): E[(X - c)^m] = sum_i C(m, i) E[X^i] (-c)^(m-i)
            s = self.scale
            out = np.zeros_like(s)
            for i in range(order + 1):
                if i % 2:
                    continue
                raw = s**i * _double_factorial(i - 1) if i else np.ones_like(s)
                out = out + math.comb(order, i) * raw * (-center) ** (order - i)
            return out
        a = self.a - center
        b = self.b - center
        width = b - a
        with np.errstate(invalid="ignore", divide="ignore"):
            unif = (b ** (order + 1) - a ** (order + 1)) / ((order + 1) * width)
        return np.where(width > 0, unif, a**order)

    def mean(self) -> float:
        """Mean of the prior."""
        return float(self.pi @ self._comp_moment(1, 0.0))

    def moment(self, order: int, *, central: bool = True) -> float:
        """Moment of the prior of the given order.

        Parameters
        ----------
        order : int
            Order (>= 1).
        central : bool, default True
            Central moment (about the prior mean) or raw moment (about zero).

        Returns
        -------
        float
        """
        check("order", order, Integer(1))
        c = self.mean() if central else 0.0
        return float(self.pi @ self._comp_moment(order, c))

    def var(self) -> float:
        """Variance of the prior (TRADE's transcriptome-wide impact when fitted to log2FCs)."""
        return self.moment(2)

    def fourth_moment(self) -> float:
        """Central fourth moment of the prior."""
        return self.moment(4)

    def kurtosis(self) -> float:
        """Standardised fourth moment ``m4 / var^2`` (3 for a single normal)."""
        v = self.var()
        return float(self.fourth_moment() / v**2) if v > 0 else float("nan")

    def cdf(self, x) -> np.ndarray:
        """Cumulative distribution function of the prior at ``x``.

        Parameters
        ----------
        x : array_like
            Points.

        Returns
        -------
        ndarray
            Same shape as ``x``.
        """
        x = np.asarray(x, dtype=np.float64)
        xf = x.reshape(-1, 1)
        if self.kind == "normal":
            s = self.scale[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                comp = np.where(s > 0, ndtr(xf / np.where(s > 0, s, 1.0)), (xf >= 0).astype(float))
        else:
            a, b = self.a[None, :], self.b[None, :]
            w = b - a
            with np.errstate(divide="ignore", invalid="ignore"):
                comp = np.where(w > 0, np.clip((xf - a) / np.where(w > 0, w, 1.0), 0, 1),
                                (xf >= a).astype(float))
        return (comp @ self.pi).reshape(x.shape)

    def to_frame(self) -> pd.DataFrame:
        """The components as a table (``pi`` and ``scale``, or ``pi``, ``a`` and ``b``)."""
        if self.kind == "normal":
            return pd.DataFrame({"pi": self.pi, "scale": self.scale})
        return pd.DataFrame({"pi": self.pi, "a": self.a, "b": self.b})


def _double_factorial(n: int) -> int:
    out = 1
    while n > 1:
        out *= n
        n -= 2
    return out


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class AshSummary:
    """Printable summary of an :class:`AshResult`."""

    n: int
    n_excluded: int
    mixcompdist: str
    solver: str
    converged: bool
    n_iter: int
    loglik: float
    prior_mean: float
    prior_var: float
    pi0: float
    n_lfsr_005: int
    components: pd.DataFrame = field(repr=False)

    def __str__(self) -> str:
        lines = [
            "Adaptive shrinkage (ash)",
            "=" * 48,
            f"{'estimates':<28}{self.n:>20d}",
            f"{'excluded (NA)':<28}{self.n_excluded:>20d}",
            f"{'components':<28}{self.mixcompdist:>20}",
            f"{'solver':<28}{self.solver:>20}",
            f"{'converged (iterations)':<28}{str(self.converged) + ' (' + str(self.n_iter) + ')':>20}",
            f"{'log-likelihood':<28}{self.loglik:>20.4f}",
            f"{'prior mean':<28}{self.prior_mean:>20.6g}",
            f"{'prior variance':<28}{self.prior_var:>20.6g}",
            f"{'weight at zero':<28}{self.pi0:>20.4f}",
            f"{'lfsr < 0.05':<28}{self.n_lfsr_005:>20d}",
            "-" * 48,
            "components with weight > 1e-4:",
            self.components[self.components["pi"] > 1e-4].to_string(index=False),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()


@dataclass(frozen=True)
class AshResult:
    """Result of :func:`ash`.

    Attributes
    ----------
    bhat, se : ndarray, shape (n,)
        The input estimates and standard errors.
    grid : ndarray
        The scale grid ``sigma_k`` (including 0 for the point mass).
    prior : AshPrior
        The fitted prior ``g``.
    pi : ndarray
        Fitted mixture weights (``prior.pi``).
    loglik : float
        Marginal log-likelihood of the included estimates under the fitted prior.
    penloglik : float
        Penalised log-likelihood (the optimised objective).
    posterior_mean, posterior_sd, lfsr, lfdr : ndarray, shape (n,)
        Posterior mean and standard deviation of each effect, local false sign rate and
        local false discovery rate (posterior probability of exactly zero). Excluded
        (non-finite) estimates get the prior's summaries, as in ashr.
    excluded : ndarray of bool, shape (n,)
        Estimates left out of the fit (non-finite ``bhat`` or ``se``, or ``se == 0``).
    mixcompdist, solver : str
        Options used.
    converged : bool
    n_iter : int
    """

    bhat: np.ndarray
    se: np.ndarray
    grid: np.ndarray
    prior: AshPrior
    loglik: float
    penloglik: float
    posterior_mean: np.ndarray
    posterior_sd: np.ndarray
    lfsr: np.ndarray
    lfdr: np.ndarray
    negative_prob: np.ndarray
    excluded: np.ndarray
    mixcompdist: str
    solver: str
    converged: bool
    n_iter: int
    penalty: np.ndarray = field(repr=False, default=None)

    @property
    def pi(self) -> np.ndarray:
        """Fitted mixture weights."""
        return self.prior.pi

    def prior_var(self) -> float:
        """Variance of the fitted prior."""
        return self.prior.var()

    def prior_moment(self, order: int, *, central: bool = True) -> float:
        """Moment of the fitted prior (see :meth:`AshPrior.moment`)."""
        return self.prior.moment(order, central=central)

    def prior_fourth_moment(self) -> float:
        """Central fourth moment of the fitted prior."""
        return self.prior.fourth_moment()

    def to_frame(self) -> pd.DataFrame:
        """Per-estimate table: ``bhat``, ``se``, ``posterior_mean``, ``posterior_sd``,
        ``lfsr``, ``lfdr``."""
        return pd.DataFrame({
            "bhat": self.bhat, "se": self.se, "posterior_mean": self.posterior_mean,
            "posterior_sd": self.posterior_sd, "lfsr": self.lfsr, "lfdr": self.lfdr,
        })

    def summary(self) -> AshSummary:
        """Return an :class:`AshSummary` (prints as a table)."""
        null = self._null_weight()
        return AshSummary(
            n=int(self.bhat.size), n_excluded=int(self.excluded.sum()),
            mixcompdist=self.mixcompdist, solver=self.solver, converged=self.converged,
            n_iter=self.n_iter, loglik=self.loglik, prior_mean=self.prior.mean(),
            prior_var=self.prior.var(), pi0=null,
            n_lfsr_005=int(np.sum(self.lfsr[~self.excluded] < 0.05)),
            components=self.prior.to_frame(),
        )

    def _null_weight(self) -> float:
        p = self.prior
        if p.kind == "normal":
            return float(p.pi[p.scale == 0].sum())
        return float(p.pi[(p.a == 0) & (p.b == 0)].sum())


# --------------------------------------------------------------------------- grid + likelihood
def ash_grid(bhat, se, *, mult: float = math.sqrt(2.0), pointmass: bool = True) -> np.ndarray:
    """ashr's default scale grid (``autoselect.mixsd``), with 0 prepended for the point mass.

    Parameters
    ----------
    bhat, se : array_like, shape (n,)
        Estimates and standard errors; non-finite pairs and ``se == 0`` are ignored.
    mult : float, default sqrt(2)
        Ratio between neighbouring grid scales (> 1).
    pointmass : bool, default True
        Prepend 0 (a point mass at zero).

    Returns
    -------
    ndarray
        Increasing scales.
    """
    check("mult", mult, Interval(1, None, closed="neither"))
    bhat = np.asarray(bhat, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    ok = np.isfinite(bhat) & np.isfinite(se) & (se > 0)
    if not np.any(ok):
        fail("se", "an array with at least one finite, positive entry paired with a finite bhat", se)
    b, s = bhat[ok], se[ok]
    smin = float(s.min()) / 10.0
    if np.all(b**2 <= s**2):
        smax = 8.0 * smin
    else:
        smax = 2.0 * math.sqrt(float(np.max(b**2 - s**2)))
    npoint = int(math.ceil(math.log2(smax / smin) / math.log2(mult)))
    grid = mult ** np.arange(-npoint, 1, dtype=np.float64) * smax
    if pointmass:
        grid = np.concatenate([[0.0], grid])
    return grid


def _log_diff_ndtr(lo, hi):
    """log(Phi(hi) - Phi(lo)) for lo <= hi, stable in both tails."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, float), np.asarray(hi, float))
    upper = lo > 0  # both in the upper tail: use Phi(-lo) - Phi(-hi)
    a = np.where(upper, -hi, lo)
    b = np.where(upper, -lo, hi)
    lb = log_ndtr(b)
    la = log_ndtr(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lb + np.log1p(-np.exp(la - lb))


def _components(grid, mixcompdist, grange):
    """Component parameters (a, b) or scales, and the index of the null component(s)."""
    if mixcompdist == "normal":
        return {"scale": grid}
    k = grid.size
    if mixcompdist == "uniform":
        a, b = -grid, grid.copy()
    else:  # halfuniform
        if grid.min() > 0:
            a = np.concatenate([-grid, np.zeros(k)])
            b = np.concatenate([np.zeros(k), grid])
        else:
            nz = grid > grid.min()
            a = np.concatenate([-grid, np.zeros(int(nz.sum()))])
            b = np.concatenate([np.zeros(k), grid[nz]])
    return {"a": a, "b": b}


def ash_loglik_matrix(bhat, se, prior: AshPrior) -> np.ndarray:
    """Log-likelihood matrix ``log p(bhat_j | component k)`` of shape (n, K).

    Parameters
    ----------
    bhat, se : ndarray, shape (n,)
        Estimates and (positive) standard errors.
    prior : AshPrior
        Components (weights are ignored).

    Returns
    -------
    ndarray, shape (n, K)
        Normal components: ``log N(bhat; 0, sigma^2 + s^2)``; uniform ``[a, b]``:
        ``log[(Phi((b - bhat)/s) - Phi((a - bhat)/s)) / (b - a)]``; point mass at ``c``:
        ``log N(bhat; c, s^2)``.
    """
    x = np.asarray(bhat, dtype=np.float64)[:, None]
    s = np.asarray(se, dtype=np.float64)[:, None]
    if prior.kind == "normal":
        v = prior.scale[None, :] ** 2 + s**2
        return -0.5 * x**2 / v - 0.5 * np.log(v) - _LOG_SQRT_2PI
    a, b = prior.a[None, :], prior.b[None, :]
    width = b - a
    point = width <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lunif = _log_diff_ndtr((a - x) / s, (b - x) / s) - np.log(np.where(point, 1.0, width))
        z = (x - a) / s
        lpoint = -0.5 * z**2 - np.log(s) - _LOG_SQRT_2PI
    return np.where(point, lpoint, lunif)


# --------------------------------------------------------------------------- posterior
def _posterior(x, s, prior: AshPrior, logL):
    """Posterior mean, sd, P(beta < 0) and P(beta = 0) per estimate (vectorised)."""
    logw = logL + np.log(np.where(prior.pi > 0, prior.pi, 1.0))[None, :]
    logw = np.where(prior.pi[None, :] > 0, logw, -np.inf)
    logw -= logw.max(axis=1, keepdims=True)
    r = np.exp(logw)
    r /= r.sum(axis=1, keepdims=True)
    xc = x[:, None]
    sc = s[:, None]
    if prior.kind == "normal":
        s0 = prior.scale[None, :]
        v0 = s0**2
        w = v0 / (v0 + sc**2)
        m1 = w * xc
        var1 = w * sc**2
        with np.errstate(divide="ignore", invalid="ignore"):
            neg = np.where(s0 > 0, ndtr(-m1 / np.sqrt(np.where(var1 > 0, var1, 1.0))), 0.0)
        zero = np.broadcast_to((s0 == 0).astype(float), m1.shape)
    else:
        a, b = prior.a[None, :], prior.b[None, :]
        width = b - a
        point = width <= 0
        alpha = (a - xc) / sc
        beta = (b - xc) / sc
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            logz = _log_diff_ndtr(alpha, beta)
            lphi_a = -0.5 * alpha**2 - _LOG_SQRT_2PI
            lphi_b = -0.5 * beta**2 - _LOG_SQRT_2PI
            ra = np.exp(lphi_a - logz)
            rb = np.exp(lphi_b - logz)
            ra = np.where(np.isfinite(ra), ra, 0.0)
            rb = np.where(np.isfinite(rb), rb, 0.0)
            m_tn = xc + sc * (ra - rb)
            v_tn = sc**2 * (1.0 + alpha * ra - beta * rb - (ra - rb) ** 2)
            m_tn = np.clip(m_tn, a, b)
            v_tn = np.clip(v_tn, 0.0, np.minimum(sc**2, width**2 / 4.0))
            # P(beta < 0) within [a, b]
            upper_neg = np.minimum(b, 0.0)
            has_neg = a < 0
            lneg = _log_diff_ndtr(alpha, (upper_neg - xc) / sc) - logz
            neg_tn = np.where(has_neg, np.exp(np.where(has_neg, lneg, 0.0)), 0.0)
            neg_tn = np.where(b <= 0, 1.0, neg_tn)
        m1 = np.where(point, a + 0 * xc, m_tn)
        var1 = np.where(point, 0.0, v_tn)
        neg = np.where(point, (a < 0).astype(float) + 0 * xc, np.clip(neg_tn, 0.0, 1.0))
        zero = np.broadcast_to((point & (a == 0)).astype(float), m1.shape)
    pm = np.sum(r * m1, axis=1)
    pm2 = np.sum(r * (var1 + m1**2), axis=1)
    psd = np.sqrt(np.maximum(pm2 - pm**2, 0.0))
    negp = np.clip(np.sum(r * neg, axis=1), 0.0, 1.0)
    zerop = np.clip(np.sum(r * zero, axis=1), 0.0, 1.0)
    return pm, psd, negp, zerop


def _lfsr(neg, zero):
    return np.where(neg > 0.5 * (1.0 - zero), 1.0 - neg, neg + zero)


# --------------------------------------------------------------------------- main entry
def ash(
    bhat,
    se,
    *,
    mixcompdist: str = "normal",
    pointmass: bool = True,
    prior: str = "nullbiased",
    nullweight: float = 10.0,
    grid=None,
    mult: float = math.sqrt(2.0),
    grange=None,
    solver: str = "mixsqp",
    tol: float = 1e-8,
    max_iter: int | None = None,
    x0=None,
) -> AshResult:
    """Adaptive shrinkage of effect estimates towards a fitted unimodal prior (ashr).

    Parameters
    ----------
    bhat : array_like, shape (n,)
        Effect estimates (e.g. log2 fold changes). Non-finite values are excluded from the
        fit and get the prior's summaries.
    se : array_like, shape (n,)
        Their standard errors (``>= 0``; non-finite or zero entries are excluded).
    mixcompdist : {"normal", "uniform", "halfuniform"}, default "normal"
        Mixture component family.
    pointmass : bool, default True
        Include a point mass at zero.
    prior : {"nullbiased", "uniform"}, default "nullbiased"
        Dirichlet penalty on the weights: ``nullweight`` on the null component ("nullbiased",
        ashr's default) or none ("uniform").
    nullweight : float, default 10
        Penalty parameter of the null component under ``prior="nullbiased"`` (>= 1).
    grid : array_like, optional
        Scales ``sigma_k`` (> 0) to use instead of ashr's automatic grid; 0 is prepended
        when ``pointmass``.
    mult : float, default sqrt(2)
        Grid ratio of the automatic grid.
    grange : (float, float), optional
        Range the uniform components are truncated to (ashr's ``grange``); duplicated
        components after truncation are dropped. Ignored (with an error) for normal components.
    solver : {"mixsqp", "em"}, default "mixsqp"
        Optimiser of the mixture weights.
    tol : float, default 1e-8
        Convergence tolerance passed to the solver.
    max_iter : int, optional
        Maximum solver iterations (default 1000 for mix-SQP, 10000 for EM).
    x0 : array_like, optional
        Starting weights (default ashr's start, most weight on the null component).

    Returns
    -------
    AshResult
        Fitted prior, posterior summaries, lfsr and lfdr.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> beta = np.where(rng.random(500) < 0.8, 0.0, rng.normal(0, 2, 500))
    >>> res = ash(beta + rng.normal(0, 1, 500), np.ones(500))
    >>> bool(res.pi.sum().round(6) == 1)
    True
    """
    check("bhat", bhat, Instance((np.ndarray, list, tuple, pd.Series), label="a 1-d array of numbers"))
    check("mixcompdist", mixcompdist, OneOf(("normal", "uniform", "halfuniform")))
    check("pointmass", pointmass, OneOf((True, False)))
    check("prior", prior, OneOf(("nullbiased", "uniform")))
    check("nullweight", nullweight, Interval(1, None))
    check("mult", mult, Interval(1, None, closed="neither"))
    check("solver", solver, OneOf(("mixsqp", "em")))
    check("tol", tol, Interval(0, None, closed="neither"))
    check("max_iter", max_iter, Integer(1, allow_none=True))
    with single_blas_thread():
        return _ash(bhat, se, mixcompdist=mixcompdist, pointmass=pointmass, prior=prior,
                    nullweight=nullweight, grid=grid, mult=mult, grange=grange, solver=solver,
                    tol=tol, max_iter=max_iter, x0=x0)


def _ash(bhat, se, *, mixcompdist, pointmass, prior, nullweight, grid, mult, grange, solver,
         tol, max_iter, x0) -> AshResult:
    """:func:`ash` without the option checks and thread control."""
    x = np.asarray(bhat, dtype=np.float64)
    s = np.asarray(se, dtype=np.float64)
    if x.ndim != 1:
        fail("bhat", "a 1-d array", x)
    if s.ndim == 0:
        s = np.full_like(x, float(s))
    if s.shape != x.shape:
        fail("se", f"an array of the same length as bhat ({x.size})", s)
    if np.any(s < 0):
        fail("se", "an array of non-negative standard errors", s)
    excluded = ~(np.isfinite(x) & np.isfinite(s) & (s > 0))
    if excluded.all():
        fail("bhat", "an array with at least one finite estimate with a finite, positive se", x)
    xi, si = x[~excluded], s[~excluded]

    if grid is None:
        scales = ash_grid(xi, si, mult=mult, pointmass=pointmass)
    else:
        check("grid", grid, ArrayLike(ndim=1, low=0.0))
        scales = np.sort(np.asarray(grid, dtype=np.float64))
        if pointmass and scales.min() > 0:
            scales = np.concatenate([[0.0], scales])
    k = scales.size
    null = int(np.argmin(scales))
    pen = np.ones(k)
    if prior == "nullbiased":
        pen[null] = nullweight
    comps = _components(scales, mixcompdist, grange)
    if mixcompdist == "halfuniform":
        pen = np.concatenate([pen, pen[scales > scales.min()] if scales.min() == 0 else pen])
    if mixcompdist == "normal":
        if grange is not None:
            fail("grange", "None for normal components (they cannot be truncated)", grange)
        g0 = AshPrior("normal", np.zeros(k), scale=comps["scale"])
    else:
        a, b = comps["a"], comps["b"]
        if grange is not None:
            check("grange", grange, ArrayLike(ndim=1))
            lo, hi = float(np.min(grange)), float(np.max(grange))
            a, b = np.maximum(a, lo), np.minimum(b, hi)
            a, b = np.minimum(a, hi), np.maximum(b, lo)
            keys = np.round(np.column_stack([a, b]), 14)
            _, first = np.unique(keys, axis=0, return_index=True)
            keep = np.sort(first)
            a, b, pen = a[keep], b[keep], pen[keep]
        g0 = AshPrior("uniform", np.zeros(a.size), a=a, b=b)
    K = pen.size

    logL = ash_loglik_matrix(xi, si, g0)
    lmax = logL.max(axis=1, keepdims=True)
    L = np.exp(logL - lmax)
    # Components with zero likelihood everywhere get weight 0 (ashr drops them).
    live = L.max(axis=0) > 0
    if x0 is None:
        n = xi.size
        start = np.full(K, 1.0 / n) if K < n else np.full(K, 1.0 / K)
        if K < n:
            nulls = np.flatnonzero(_null_mask(g0))
            start[nulls] = (n - K + 1) / n / max(1, nulls.size)
    else:
        check("x0", x0, ArrayLike(ndim=1, low=0.0))
        start = np.asarray(x0, dtype=np.float64)
        if start.size != K:
            fail("x0", f"a vector of length {K} (number of components)", x0)
    opts = {"tol": tol}
    if max_iter is not None:
        opts["max_iter"] = max_iter
    fitfn = _mixsqp if solver == "mixsqp" else mixem
    fit = fitfn(L[:, live], prior=pen[live], x0=start[live] / start[live].sum(), **opts)
    pi = np.zeros(K)
    pi[live] = fit.x
    g = AshPrior(g0.kind, pi, scale=g0.scale, a=g0.a, b=g0.b)

    with np.errstate(divide="ignore"):
        loglik = float(np.sum(np.log(L @ pi) + lmax[:, 0]))
        penloglik = loglik + float(np.sum((pen - 1.0)[pen != 1] * np.log(pi[pen != 1])))

    pm = np.empty_like(x)
    psd = np.empty_like(x)
    negp = np.empty_like(x)
    zerop = np.empty_like(x)
    pm_i, psd_i, neg_i, zero_i = _posterior(xi, si, g, logL)
    inc = ~excluded
    pm[inc], psd[inc], negp[inc], zerop[inc] = pm_i, psd_i, neg_i, zero_i
    if excluded.any():
        pm_p, sd_p, neg_p, zero_p = _prior_summaries(g)
        pm[excluded], psd[excluded], negp[excluded], zerop[excluded] = pm_p, sd_p, neg_p, zero_p
    return AshResult(
        bhat=x, se=s, grid=scales, prior=g, loglik=loglik, penloglik=penloglik,
        posterior_mean=pm, posterior_sd=psd, lfsr=_lfsr(negp, zerop), lfdr=zerop,
        negative_prob=negp, excluded=excluded, mixcompdist=mixcompdist, solver=solver,
        converged=bool(fit.converged), n_iter=int(fit.n_iter), penalty=pen,
    )


def _null_mask(g: AshPrior) -> np.ndarray:
    if g.kind == "normal":
        return g.scale == g.scale.min()
    width = g.b - g.a
    return width == width.min()


def _prior_summaries(g: AshPrior):
    """Mean, sd, P(<0) and P(=0) of the prior itself (used for excluded estimates)."""
    mean = g.mean()
    sd = math.sqrt(max(g.var(), 0.0))
    if g.kind == "normal":
        neg = float(g.pi @ np.where(g.scale > 0, 0.5, 0.0))
        zero = float(g.pi @ (g.scale == 0))
    else:
        w = g.b - g.a
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(w > 0, np.clip((np.minimum(g.b, 0) - g.a) / np.where(w > 0, w, 1), 0, 1),
                            (g.a < 0).astype(float))
        neg = float(g.pi @ frac)
        zero = float(g.pi @ ((w == 0) & (g.a == 0)))
    return mean, sd, neg, zero
