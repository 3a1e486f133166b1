"""The dispersion trend and the prior variance of the log dispersions.

Follows ``estimateDispersionsFit``, ``parametricDispersionFit`` and ``localDispersionFit`` in
DESeq2's ``R/core.R`` (1.38):

- Parametric trend ``alpha(mu) = a0 + a1 / mu``: a Gamma GLM with identity link fitted to the
  gene-wise estimates, refitted after dropping genes whose ratio to the current fit lies
  outside ``(1e-4, 15)`` until the coefficients settle (``parametricDispersionFit``). When
  the fit fails (a coefficient not positive, or no convergence in 10 rounds) R substitutes
  the local fit, and so does this module.
- Local trend: ``exp`` of locfit's local quadratic regression of ``log(alpha)`` on
  ``log(mean)`` with the means as prior weights (:mod:`._native_locfit`), over the genes with
  ``alpha >= 10 minDisp``; ``minDisp`` everywhere when there are none.
- Mean trend: the 0.1% trimmed mean of the estimates above ``10 minDisp``.
- Prior variance ``max(MAD^2 - trigamma((m - p) / 2), 0.25)`` of the log residuals; with
  1 to 3 residual degrees of freedom DESeq2 instead matches the histogram of the residuals
  to simulated ``log(chi^2_{m-p} / (m-p)) + N(0, s^2)`` draws (KL divergence on a grid of
  ``s^2``, loess-smoothed). That branch is reproduced with NumPy's generator (fixed seed)
  and a direct local quadratic fit, so its value can differ from R's by Monte Carlo error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import polygamma

from ._native_locfit import LocalFit, locfit_1d

__all__ = ["DispersionTrend", "fit_trend", "prior_variance", "mad"]

MIN_DISP = 1e-8


@dataclass(frozen=True)
class DispersionTrend:
    """A fitted dispersion trend.

    Parameters
    ----------
    kind : {"parametric", "local", "mean"}
        Which fit was used.
    coef : tuple of float
        ``(asymptDisp, extraPois)`` for the parametric fit; ``(mean,)`` for the mean fit;
        ``(value,)`` for a local fit that is a constant (no estimate above ``10 minDisp``).
    local : LocalFit, optional
        The locfit curve of ``log(alpha)`` against ``log(mean)`` (local fit).
    requested : str
        The ``fit_type`` asked for (``"parametric"`` falls back to ``"local"``).
    """

    kind: str
    coef: tuple
    local: LocalFit | None = None
    requested: str = ""

    def __call__(self, means: np.ndarray) -> np.ndarray:
        """Trend value at the given base means."""
        means = np.asarray(means, dtype=float)
        if self.kind == "parametric":
            return self.coef[0] + self.coef[1] / means
        if self.kind == "local" and self.local is not None:
            with np.errstate(divide="ignore"):
                return np.exp(self.local(np.log(means)))
        return np.full(means.shape, self.coef[0])


def _gamma_identity_glm(x, y, start, *, maxit: int = 25, eps: float = 1e-8):
    """R's ``glm.fit`` for ``y ~ x`` with Gamma family, identity link, given start."""
    X = np.column_stack([np.ones_like(x), x])
    coef = np.asarray(start, dtype=float)
    eta = X @ coef
    if not np.all(eta > 0):
        raise FloatingPointError("invalid starting values")

    def dev(mu):
        return float(np.sum(-2.0 * (np.log(np.where(y == 0, 1.0, y / mu)) - (y - mu) / mu)))

    devold = dev(eta)
    converged = False
    for _ in range(maxit):
        mu = eta
        z = eta + (y - mu)
        w = 1.0 / mu
        new, *_ = np.linalg.lstsq(X * w[:, None], z * w, rcond=None)
        eta_new = X @ new
        halvings = 0
        while not np.all(eta_new > 0):
            halvings += 1
            if halvings > 50:
                raise FloatingPointError("no valid step")
            new = 0.5 * (new + coef)
            eta_new = X @ new
        coef, eta = new, eta_new
        d = dev(eta)
        if abs(d - devold) / (abs(d) + 0.1) < eps:
            converged = True
            break
        devold = d
    return coef, converged


def _parametric(means, disps):
    coefs = np.array([0.1, 1.0])
    it = 0
    while True:
        resid = disps / (coefs[0] + coefs[1] / means)
        good = (resid > 1e-4) & (resid < 15)
        old = coefs
        coefs, conv = _gamma_identity_glm(1.0 / means[good], disps[good], coefs)
        if not np.all(coefs > 0):
            raise FloatingPointError("parametric dispersion fit failed")
        if np.sum(np.log(coefs / old) ** 2) < 1e-6 and conv:
            return coefs
        it += 1
        if it > 10:
            raise FloatingPointError("dispersion fit did not converge")


def _trimmed_mean(x: np.ndarray, trim: float) -> float:
    x = np.sort(x)
    n = x.size
    lo = int(np.floor(n * trim))
    return float(x[lo:n - lo].mean())


def fit_trend(base_mean: np.ndarray, disp_gene: np.ndarray, *, fit_type: str = "parametric") -> DispersionTrend:
    """Fit the dispersion trend to the gene-wise estimates (non-zero genes).

    Parameters
    ----------
    base_mean, disp_gene : ndarray, shape (n_genes,)
        Base means and gene-wise dispersions of the genes that are not all zero.
    fit_type : {"parametric", "local", "mean"}
        Parametric (with the local fit as fallback, as R does), local or mean.

    Returns
    -------
    DispersionTrend

    Raises
    ------
    ValueError
        For an unknown ``fit_type`` or when no estimate lies above ``100 minDisp``.
    """
    if fit_type not in ("parametric", "local", "mean"):
        raise ValueError(f"parameter 'fit_type' must be one of 'parametric', 'local', 'mean'; got {fit_type!r}")
    requested = fit_type
    use = disp_gene > 100 * MIN_DISP
    if not use.any():
        raise ValueError(
            "parameter 'adata' must give some gene-wise dispersion estimates above 1e-6 to fit a "
            "dispersion trend; got all estimates within 2 orders of magnitude of the minimum"
        )
    if fit_type == "parametric":
        try:
            with np.errstate(all="ignore"):
                coefs = _parametric(base_mean[use], disp_gene[use])
            return DispersionTrend("parametric", (float(coefs[0]), float(coefs[1])), requested=requested)
        except (FloatingPointError, np.linalg.LinAlgError, ValueError):
            pass
        fit_type = "local"
    if fit_type == "local":
        means, disps = base_mean[use], disp_gene[use]
        keep = disps >= 10 * MIN_DISP
        if not keep.any():
            return DispersionTrend("local", (MIN_DISP,), requested=requested)
        curve = locfit_1d(np.log(means[keep]), np.log(disps[keep]), means[keep])
        return DispersionTrend("local", (), local=curve, requested=requested)
    use_mean = disp_gene > 10 * MIN_DISP
    return DispersionTrend("mean", (_trimmed_mean(disp_gene[use_mean], 0.001),), requested=requested)


def mad(x: np.ndarray) -> float:
    """Median absolute deviation scaled by 1.4826 (R's ``mad``)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _loess_quadratic(x, y, xout, span):
    n = x.size
    q = int(np.floor(n * span))
    out = np.empty(xout.size)
    for k, x0 in enumerate(xout):
        d = np.abs(x - x0)
        h = np.partition(d, q - 1)[q - 1]
        u = np.clip(d / h, 0, 1)
        w = (1 - u ** 3) ** 3
        X = np.column_stack([np.ones(n), x - x0, (x - x0) ** 2])
        sw = np.sqrt(w)
        beta, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
        out[k] = beta[0]
    return out


def _simulated_prior_var(resid: np.ndarray, df: int) -> float:
    rng = np.random.default_rng(2)
    brks = np.arange(-20, 21) / 2.0
    obs = resid[(resid > brks[0]) & (resid < brks[-1])]
    obs_d, _ = np.histogram(obs, bins=brks, density=True)
    grid = np.linspace(0, 8, 200)
    kl = np.empty(grid.size)
    for i, v in enumerate(grid):
        rd = np.log(rng.chisquare(df, 10000)) + rng.normal(0, np.sqrt(v), 10000) - np.log(df)
        rd = rd[(rd > brks[0]) & (rd < brks[-1])]
        rd_d, _ = np.histogram(rd, bins=brks, density=True)
        z = np.concatenate([obs_d, rd_d])
        small = z[z > 0].min()
        kl[i] = np.sum(obs_d * (np.log(obs_d + small) - np.log(rd_d + small)))
    fine = np.linspace(0, 8, 1000)
    fitted = _loess_quadratic(grid, kl, fine, 0.2)
    return max(float(fine[np.argmin(fitted)]), 0.25)


def prior_variance(disp_gene: np.ndarray, disp_fit: np.ndarray, n_samples: int, n_coef: int) -> tuple[float, float]:
    """Prior variance of the log dispersions around the trend.

    Parameters
    ----------
    disp_gene, disp_fit : ndarray, shape (n_genes,)
        Gene-wise estimates and trend values (non-zero genes).
    n_samples, n_coef : int
        ``m`` and ``p`` of the design.

    Returns
    -------
    prior_var : float
        Variance of the log-normal prior.
    var_log_disp : float
        ``MAD^2`` of the log residuals (used for the dispersion-outlier rule).
    """
    above = disp_gene >= 100 * MIN_DISP
    resid = np.log(disp_gene) - np.log(disp_fit)
    var_log = mad(resid[above]) ** 2
    df = n_samples - n_coef
    if 0 < df <= 3:
        return _simulated_prior_var(resid[above], df), var_log
    if df > 0:
        return max(var_log - float(polygamma(1, df / 2.0)), 0.25), var_log
    return var_log, var_log
