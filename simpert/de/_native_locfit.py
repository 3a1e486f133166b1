"""One-dimensional local regression with locfit's defaults (the ``fitType = "local"`` trend).

DESeq2's ``localDispersionFit`` (``R/core.R``) fits
``locfit(log(disp) ~ log(mean), weights = mean)`` and predicts with ``predict``. With one
predictor and locfit's defaults (``locfit.raw`` in ``R/locfit.r``; C sources ``lf_nbhd.c``,
``weight.c``, ``ev_atree.c``, ``ev_interp.c``) that is:

- family ``qgaussian`` (local weighted least squares), local polynomial of degree 2;
- nearest-neighbour bandwidth: at a fitting point ``x0`` the bandwidth ``h`` is the distance to
  the ``k``-th nearest data point, ``k = floor(n * 0.7 + 1e-12)`` (``nbhd``), no fixed part;
- tricube kernel ``(1 - u^3)^3`` for ``u = |x - x0| / h < 1`` times the prior weights;
- evaluation structure ``rbox()``: an adaptive tree on the data range ``[min x, max x]``
  (``set_flim``); a cell is halved while its width exceeds ``cut = 0.8`` times the smaller
  bandwidth at its two vertices (``atree_split``); at every vertex the local fit's value and
  slope are kept;
- a parametric component (``pcomp.c``): the global quadratic fitted by weighted least squares
  (prior weights only) is subtracted from the vertex values and slopes before interpolation
  and added back after it;
- prediction: descend the tree to the terminal cell holding ``x`` and interpolate the vertex
  values and slopes (minus the parametric component) with the cubic Hermite polynomial
  (``rectcell_interp``); beyond the range the end cell's polynomial becomes linear
  extrapolation with the end slope (``hermite2``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LocalFit", "locfit_1d"]


def _vertex_fit(x, y, w, x0, k):
    """Local quadratic fit at ``x0``: value, slope and bandwidth."""
    d = np.abs(x - x0)
    h = float(np.partition(d, k - 1)[k - 1]) if k >= 1 else 0.0
    if h > 0:
        u = d / h
        kw = np.where(u < 1.0, (1.0 - u ** 3) ** 3, 0.0) * w
    else:
        kw = np.where(d == 0, w, 0.0)
    use = kw > 0
    dx = x[use] - x0
    X = np.column_stack([np.ones(dx.size), dx, 0.5 * dx * dx])
    sw = np.sqrt(kw[use])
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y[use] * sw, rcond=None)
    return float(coef[0]), float(coef[1]), h


@dataclass(frozen=True)
class LocalFit:
    """A fitted locfit curve: the terminal cells of the tree and the vertex values and slopes.

    Parameters
    ----------
    knots : ndarray
        Sorted vertices (cell boundaries).
    value, slope : ndarray
        Local fit value and first derivative at each vertex, minus the parametric component.
    pc_center : float
        Weighted mean of the predictor (centre of the parametric component).
    pc_coef : ndarray, shape (3,)
        Parametric component ``c0 + c1 t + c2 t^2 / 2`` in ``t = x - pc_center``.
    """

    knots: np.ndarray
    value: np.ndarray
    slope: np.ndarray
    pc_center: float = 0.0
    pc_coef: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def parametric(self, x: np.ndarray) -> np.ndarray:
        """The parametric component at ``x``."""
        t = np.asarray(x, dtype=float) - self.pc_center
        c = self.pc_coef
        return c[0] + c[1] * t + 0.5 * c[2] * t * t

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Predict at ``x`` (Hermite interpolation in the terminal cell, linear beyond)."""
        x = np.asarray(x, dtype=float)
        kn = self.knots
        if kn.size == 1:
            return self.value[0] + self.parametric(x)
        j = np.clip(np.searchsorted(kn, x, side="right") - 1, 0, kn.size - 2)
        lo, hi = kn[j], kn[j + 1]
        width = hi - lo
        t = (x - lo) / width
        f0, f1 = self.value[j], self.value[j + 1]
        d0, d1 = self.slope[j] * width, self.slope[j + 1] * width
        p1 = t * t * (3.0 - 2.0 * t)
        inner = (1.0 - p1) * f0 + p1 * f1 + t * (1.0 - t) ** 2 * d0 + t * t * (t - 1.0) * d1
        left = f0 + t * d0
        right = f1 + (t - 1.0) * d1
        return np.where(t < 0, left, np.where(t > 1, right, inner)) + self.parametric(x)


def locfit_1d(x, y, weights=None, *, alpha: float = 0.7, cut: float = 0.8, max_vertices: int = 10_000) -> LocalFit:
    """Fit ``locfit(y ~ x, weights = weights)`` with locfit's default settings.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Predictor and response.
    weights : array_like, shape (n,), optional
        Prior weights (default 1).
    alpha : float, default 0.7
        Nearest-neighbour fraction of the bandwidth.
    cut : float, default 0.8
        Tree refinement parameter of ``rbox()``.
    max_vertices : int, default 10000
        Guard against runaway refinement.

    Returns
    -------
    LocalFit
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"parameter 'x' must be a 1-d array of the same shape as 'y'; got {x.shape} and {y.shape}")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    n = x.size
    if n == 0:
        raise ValueError("parameter 'x' must hold at least one point; got none")
    k = int(n * alpha + 1e-12)
    lo, hi = float(x.min()), float(x.max())
    fits: dict[float, tuple[float, float, float]] = {}

    def fit(v):
        if v not in fits:
            fits[v] = _vertex_fit(x, y, w, v, k)
        return fits[v]

    fit(lo)
    fit(hi)
    # iterative version of atree_grow: split while width > cut * min positive bandwidth
    stack = [(lo, hi)]
    while stack:
        a, b = stack.pop()
        ha, hb = fits[a][2], fits[b][2]
        hs = [h for h in (ha, hb) if h > 0]
        score = (b - a) / min(hs) if hs else 2.0 * (b - a) / (hi - lo if hi > lo else 1.0)
        if cut < score and len(fits) < max_vertices:
            m = (a + b) / 2.0
            fit(m)
            stack.append((m, b))
            stack.append((a, m))
    knots = np.array(sorted(fits))
    vals = np.array([fits[v][0] for v in knots])
    slopes = np.array([fits[v][1] for v in knots])
    # parametric component: global quadratic around the weighted mean, prior weights only
    xbar = float(np.sum(w * x) / np.sum(w))
    t = x - xbar
    X = np.column_stack([np.ones(n), t, 0.5 * t * t])
    sw = np.sqrt(w)
    pc, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    tk = knots - xbar
    vals = vals - (pc[0] + pc[1] * tk + 0.5 * pc[2] * tk * tk)
    slopes = slopes - (pc[1] + pc[2] * tk)
    return LocalFit(knots=knots, value=vals, slope=slopes, pc_center=xbar, pc_coef=np.asarray(pc, dtype=float))
