"""Monte Carlo validators for the closed forms of :mod:`simpert.theory`.

``validate(name, params, n_replicates=..., rng=...)`` evaluates a closed form and estimates
the same quantity by simulation, returning the closed-form value, the Monte Carlo mean, its
standard error and the z-score ``(mc_mean - closed_form) / mc_se`` for every quantity the
closed form reports.

Where the data come from:

- ``noise_only_rho``, ``noise_only_correlation`` and ``effects_correlation`` with independent
  effects (``cov = 0`` and ``var_test = N_p var_train``, the law of
  ``simpert.sim.noise_only(effect_sd=...)``) simulate with :func:`simpert.sim.noise_only`.
  Genes are independent in that design, so one call with ``G x R`` genes is cut into ``R``
  independent blocks of ``G`` genes (one block = one replicate of a ``G``-gene experiment).
- ``effects_correlation`` with other effect moments, ``baseline_mse``,
  ``effect_estimator_mse``, ``topk_mse`` and ``embedding_error`` need fixed per-gene effects
  or correlated effects that ``sim.noise_only`` does not draw; they use vectorised numpy
  draws of every raw sample (controls, perturbed training samples, test replicates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .._random import as_seed_sequence
from .._validation import Integer, OneOf, check, fail
from ._bias_variance import baseline_mse, effect_estimator_mse, embedding_error
from ._correlation import effects_correlation, noise_only_correlation, noise_only_rho
from ._genes import gene_arrays
from ._table import TheorySummary
from ._topk import topk_mse

__all__ = ["ValidationResult", "validate", "CLOSED_FORMS"]

_CHUNK = 2_000_000  # floats per simulated block of raw samples


@dataclass(frozen=True)
class ValidationResult:
    """A closed form next to its Monte Carlo estimate.

    Attributes
    ----------
    name : str
        The closed form validated.
    labels : tuple of str
        The quantities compared (one entry per array element below).
    closed_form : ndarray
        Closed-form values.
    mc_mean : ndarray
        Monte Carlo estimates.
    mc_se : ndarray
        Their standard errors (over independent replicates).
    z : ndarray
        ``(mc_mean - closed_form) / mc_se``.
    n_replicates : int
    source : str
        ``"simpert.sim.noise_only"`` or ``"numpy"``: where the simulated data came from.
    params : dict
        The parameters used.
    """

    name: str
    labels: tuple
    closed_form: np.ndarray
    mc_mean: np.ndarray
    mc_se: np.ndarray
    z: np.ndarray
    n_replicates: int
    source: str
    params: dict = field(default_factory=dict)

    @property
    def max_abs_z(self) -> float:
        """Largest ``|z|`` over the quantities."""
        return float(np.max(np.abs(self.z)))

    def passed(self, tol: float = 3.0) -> bool:
        """Whether every ``|z| <= tol``."""
        return bool(self.max_abs_z <= tol)

    def summary(self) -> TheorySummary:
        """One row per quantity: closed form, Monte Carlo mean, SE, z."""
        tab = pd.DataFrame(
            {"closed form": self.closed_form, "MC mean": self.mc_mean, "MC SE": self.mc_se, "z": self.z},
            index=pd.Index(list(self.labels), name="quantity"),
        )
        shown = {k: (f"array({np.size(v)})" if np.ndim(v) else v) for k, v in self.params.items()}
        notes = (f"{self.n_replicates} replicates from {self.source}; params: {shown}",)
        return TheorySummary(f"Monte Carlo check of {self.name}", tab, notes)


# --------------------------------------------------------------------------- helpers


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def _chunks(n_replicates: int, per_replicate: int, ss: np.random.SeedSequence):
    """Split replicates into chunks of bounded size, each with its own child seed."""
    size = max(1, min(n_replicates, _CHUNK // max(per_replicate, 1)))
    starts = list(range(0, n_replicates, size))
    for start, child in zip(starts, ss.spawn(len(starts))):
        yield min(size, n_replicates - start), np.random.default_rng(child)


def _rowwise_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (broadcasting over the others)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    num = np.sum(xc * yc, axis=-1)
    return num / np.sqrt(np.sum(xc * xc, axis=-1) * np.sum(yc * yc, axis=-1))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks along the last axis (continuous data: no ties)."""
    order = np.argsort(x, axis=-1)
    ranks = np.empty_like(order, dtype=float)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(x.shape[-1], dtype=float), x.shape), axis=-1)
    return ranks


def _corr(x, y, method: str) -> np.ndarray:
    if method == "spearman":
        x, y = _ranks(x), _ranks(y)
    return _rowwise_corr(x, y)


def _design_counts(p: dict) -> tuple[int, int, int, bool]:
    n, c, m = p["n"], p["n_controls"], p["m"]
    cit = p["controls_in_train"]
    n_p = n - c if cit else n
    return n_p, c, m, cit


# --------------------------------------------------- noise-only design: data sources


def _lfc_numpy(p: dict, n_rep: int, g: int, n_test: int, rng: np.random.Generator,
               var_train: float = 0.0, var_test: float = 0.0, cov: float = 0.0):
    """Raw Gaussian samples for ``n_rep`` replicates; returns predicted and observed LFCs.

    Returns ``pred`` of shape (n_rep, g) = training mean - control mean and ``obs`` of shape
    (n_rep, n_test, g) = test-replicate mean - control mean. Effects (when any moment is
    non-zero) are drawn per gene and replicate as a bivariate normal ``(Dbar, D_test)``
    (one ``D_test`` per test perturbation, all with the same covariance with ``Dbar``).
    """
    n_p, c, m, cit = _design_counts(p)
    s = math.sqrt(p.get("noise_var", 1.0))
    ctrl = s * rng.standard_normal((n_rep, c, g))
    pert = s * rng.standard_normal((n_rep, n_p, g))
    test = s * rng.standard_normal((n_rep, n_test, m, g))
    if var_train or var_test:
        # (Dbar, D_t1, ..., D_tT): Dbar ~ N(0, vtr); D_t = (cov/vtr) Dbar + independent part
        dbar = math.sqrt(var_train) * rng.standard_normal((n_rep, 1, g))
        slope = cov / var_train if var_train > 0 else 0.0
        resid = max(var_test - slope * cov, 0.0)
        dtest = slope * dbar + math.sqrt(resid) * rng.standard_normal((n_rep, n_test, g))
        pert = pert + dbar
        test = test + dtest[:, :, None, :]
    ybar = ctrl.mean(axis=1)
    if cit:
        train_mean = (ctrl.sum(axis=1) + pert.sum(axis=1)) / (c + n_p)
    else:
        train_mean = pert.mean(axis=1)
    return train_mean - ybar, test.mean(axis=2) - ybar[:, None, :]


def _lfc_sim(p: dict, n_rep: int, g: int, n_test: int, rng: np.random.Generator,
             effect_sd: float = 0.0):
    """The same LFCs from :func:`simpert.sim.noise_only`: ``n_rep`` blocks of ``g`` genes."""
    from .. import sim

    n_p, c, m, cit = _design_counts(p)
    n_train = n_p + c if cit else n_p
    n_total = (n_train if cit else n_train + c) + n_test  # sim's n counts test perturbations once
    adata = sim.noise_only(
        n=n_total, n_genes=g * n_rep, n_controls=c, controls_in_train=cit, n_train=n_train,
        m=m, noise=p.get("noise", "gaussian"), sigma=math.sqrt(p.get("noise_var", 1.0)), effect_sd=effect_sd,
        mean=p.get("nb_mean", 10.0), dispersion=p.get("nb_dispersion", 0.1), rng=rng,
    )
    x = np.asarray(adata.X, dtype=float)
    role = adata.obs["role"].to_numpy().astype(str)
    ybar = x[role == "control"].mean(axis=0)
    in_train = (role == "train") | ((role == "control") & cit)
    pred = x[in_train].mean(axis=0) - ybar
    test_rows = role == "test"
    perts = adata.obs["perturbation"].to_numpy().astype(str)[test_rows]
    codes, uniq = pd.factorize(perts)
    if len(uniq) != n_test:
        raise RuntimeError(f"simpert.sim.noise_only returned {len(uniq)} test perturbations; expected {n_test}")
    sums = np.zeros((n_test, x.shape[1]))
    np.add.at(sums, codes, x[test_rows])
    obs = sums / np.bincount(codes, minlength=n_test)[:, None] - ybar
    return pred.reshape(n_rep, g), obs.reshape(n_test, n_rep, g).transpose(1, 0, 2)


def _noise_only_lfc(p: dict, n_rep: int, g: int, n_test: int, rng, *, effect_sd: float = 0.0):
    return _lfc_sim(p, n_rep, g, n_test, rng, effect_sd=effect_sd), "simpert.sim.noise_only"


# ----------------------------------------------------------------- correlation forms


_DESIGN_DEFAULTS = dict(n=50, n_controls=1, m=1, controls_in_train=True)


def _correlation_mc(p: dict, n_replicates: int, ss, *, source_fn) -> tuple[dict, str]:
    """Mean over test samples of the gene-wise correlation, per replicate block.

    ``n_genes=None`` (population value): blocks of ``block_genes`` genes, the estimate is
    the correlation pooled over all genes of all blocks (bias O(1/total genes)) and the SE
    comes from the spread of the block correlations (batch means).
    """
    method = p.get("method", "pearson")
    g = p.get("n_genes")
    n_test = p.get("n_test", 4)
    pooled = g is None
    if pooled:
        g = p.get("block_genes", 2000)
    per_rep = g * (p["n"] + p["n_controls"] + n_test * p["m"])
    block_vals, pooled_num = [], []
    source = "numpy"
    for size, rng in _chunks(n_replicates, per_rep, ss):
        (pred, obs), source = source_fn(p, size, g, n_test, rng)
        block_vals.append(_corr(pred[:, None, :], obs, method).mean(axis=1))
        if pooled:
            pooled_num.append((pred, obs))
    vals = np.concatenate(block_vals)
    mean, se = _mean_se(vals)
    if pooled:
        pred = np.concatenate([a.ravel() for a, _ in pooled_num])
        obs = np.concatenate([b.transpose(1, 0, 2).reshape(n_test, -1) for _, b in pooled_num], axis=1)
        mean = float(_corr(pred[None, :], obs, method).mean())
    return {method: (mean, se)}, source


def _cf_rho(p):
    return {"rho": noise_only_rho(p["n"], p["n_controls"], p["m"], controls_in_train=p["controls_in_train"])}


def _mc_rho(p, n_replicates, ss):
    q = dict(p, n_genes=None, method="pearson")
    res, source = _correlation_mc(q, n_replicates, ss, source_fn=_noise_only_lfc)
    return {"rho": res["pearson"]}, source


def _cf_noise_corr(p):
    val = noise_only_correlation(p["n"], p["n_controls"], p["m"], n_genes=p.get("n_genes"),
                                 method=p.get("method", "pearson"), controls_in_train=p["controls_in_train"])
    return {p.get("method", "pearson"): val}


def _mc_noise_corr(p, n_replicates, ss):
    return _correlation_mc(p, n_replicates, ss, source_fn=_noise_only_lfc)


_EFFECT_KEYS = ("var_train", "var_test", "cov", "noise_var")


def _cf_effects(p):
    val = effects_correlation(p["n"], p["n_controls"], p["m"], controls_in_train=p["controls_in_train"],
                              n_genes=p.get("n_genes"), method=p.get("method", "pearson"),
                              **{k: p[k] for k in _EFFECT_KEYS if k in p})
    return {p.get("method", "pearson"): val}


def _mc_effects(p, n_replicates, ss):
    n_p = _design_counts(p)[0]
    vtr, vte, cov = (float(p.get(k, 0.0)) for k in ("var_train", "var_test", "cov"))
    iid = cov == 0.0 and math.isclose(vte, n_p * vtr, rel_tol=1e-12, abs_tol=1e-15)
    if iid:
        sd = math.sqrt(vte)

        def source_fn(q, size, g, n_test, rng):
            return _noise_only_lfc(q, size, g, n_test, rng, effect_sd=sd)
    else:
        def source_fn(q, size, g, n_test, rng):
            return _lfc_numpy(q, size, g, n_test, rng, var_train=vtr, var_test=vte, cov=cov), "numpy"
    return _correlation_mc(p, n_replicates, ss, source_fn=source_fn)


# ------------------------------------------------------------ bias-variance forms


def _bv_defaults(p: dict) -> dict:
    out = dict(d_train_mean=0.0, noise_var=1.0, n_controls=1, n_perturbed=49, m=1, controls_in_train=True)
    out.update(p)
    return out


def _raw_baseline_draws(p: dict, n_rep: int, rng, d_g, dbar, s2):
    """Raw samples: controls, perturbed training samples (effects averaging to Dbar), tests.

    The ``N`` training effects per gene are ``Dbar`` plus zero-sum deviations (half the
    samples +dev, half -dev), so the individual perturbations differ while their mean is
    exactly ``Dbar``.
    """
    c, n, m = p["n_controls"], p["n_perturbed"], p["m"]
    s = np.sqrt(s2)
    g = d_g.size
    y = s * rng.standard_normal((n_rep, c, g))
    dev = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    if n % 2:
        dev[-1] = 0.0
    effects = dbar[None, :] + 0.5 * dev[:, None]
    x = effects[None] + s * rng.standard_normal((n_rep, n, g))
    z = d_g + s * rng.standard_normal((n_rep, m, g))
    return y, x, z


def _cf_baseline(p):
    q = _bv_defaults(p)
    r = baseline_mse(q["d_test"], q["d_train_mean"], noise_var=q["noise_var"], n_controls=q["n_controls"],
                     n_perturbed=q["n_perturbed"], m=q["m"], controls_in_train=q["controls_in_train"])
    return {"control": r.control_total, "mean": r.mean_total,
            "level_control": float(r.level_control.sum()), "level_mean": float(r.level_mean.sum())}


def _mc_baseline(p, n_replicates, ss):
    q = _bv_defaults(p)
    d_g, dbar, s2 = gene_arrays(("noise_var",), d_test=q["d_test"], d_train_mean=q["d_train_mean"],
                                noise_var=q["noise_var"])
    c, n = q["n_controls"], q["n_perturbed"]
    out = {k: [] for k in ("control", "mean", "level_control", "level_mean")}
    per_rep = d_g.size * (c + n + q["m"])
    for size, rng in _chunks(n_replicates, per_rep, ss):
        y, x, z = _raw_baseline_draws(q, size, rng, d_g, dbar, s2)
        ybar, zbar = y.mean(axis=1), z.mean(axis=1)
        if q["controls_in_train"]:
            allmean = (y.sum(axis=1) + x.sum(axis=1)) / (c + n)
        else:
            allmean = x.mean(axis=1)
        out["control"].append(((ybar - zbar) ** 2).sum(axis=1))
        out["mean"].append(((allmean - zbar) ** 2).sum(axis=1))
        out["level_control"].append((ybar**2).sum(axis=1))  # M = 0
        out["level_mean"].append((allmean**2).sum(axis=1))
    return {k: _mean_se(np.concatenate(v)) for k, v in out.items()}, "numpy"


def _cf_effect_est(p):
    q = _bv_defaults(p)
    # the number of genes comes from d_test when only it is an array
    _, dbar, s2 = gene_arrays(("noise_var",), d_test=q.get("d_test", 0.0), d_train_mean=q["d_train_mean"],
                              noise_var=q["noise_var"])
    r = effect_estimator_mse(dbar, noise_var=s2, n_controls=q["n_controls"],
                             n_perturbed=q["n_perturbed"], m=q["m"])
    return {"simple": r.simple_total, "centroid": r.centroid_total,
            "simple_bias": float(r.simple_bias.mean()), "centroid_bias": float(r.centroid_bias.mean())}


def _mc_effect_est(p, n_replicates, ss):
    q = _bv_defaults(p)
    q.setdefault("d_test", 0.0)
    d_g, dbar, s2 = gene_arrays(("noise_var",), d_test=q["d_test"], d_train_mean=q["d_train_mean"],
                                noise_var=q["noise_var"])
    out = {k: [] for k in ("simple", "centroid", "simple_bias", "centroid_bias")}
    per_rep = d_g.size * (q["n_controls"] + q["n_perturbed"] + q["m"])
    for size, rng in _chunks(n_replicates, per_rep, ss):
        y, x, z = _raw_baseline_draws(q, size, rng, d_g, dbar, s2)
        err_s = z.mean(axis=1) - y.mean(axis=1) - d_g
        err_c = z.mean(axis=1) - x.mean(axis=1) - d_g
        out["simple"].append((err_s**2).sum(axis=1))
        out["centroid"].append((err_c**2).sum(axis=1))
        out["simple_bias"].append(err_s.mean(axis=1))
        out["centroid_bias"].append(err_c.mean(axis=1))
    return {k: _mean_se(np.concatenate(v)) for k, v in out.items()}, "numpy"


def _cf_topk(p):
    q = _bv_defaults(p)
    r = topk_mse(q["d_test"], q["d_train_mean"], k=q["k"], noise_var=q["noise_var"], n_controls=q["n_controls"],
                 n_perturbed=q["n_perturbed"], m=q["m"], controls_in_train=q["controls_in_train"])
    return {"control": r.control, "mean": r.mean}


def _mc_topk(p, n_replicates, ss):
    q = _bv_defaults(p)
    d_g, dbar, s2 = gene_arrays(("noise_var",), d_test=q["d_test"], d_train_mean=q["d_train_mean"],
                                noise_var=q["noise_var"])
    c, n, k = q["n_controls"], q["n_perturbed"], q["k"]
    out = {"control": [], "mean": []}
    per_rep = d_g.size * (c + n + q["m"])
    for size, rng in _chunks(n_replicates, per_rep, ss):
        y, x, z = _raw_baseline_draws(q, size, rng, d_g, dbar, s2)
        ybar, zbar = y.mean(axis=1), z.mean(axis=1)
        allmean = (y.sum(axis=1) + x.sum(axis=1)) / (c + n) if q["controls_in_train"] else x.mean(axis=1)
        obs = zbar - ybar
        top = np.argsort(-np.abs(obs), axis=1)[:, :k]
        out["control"].append((np.take_along_axis(obs, top, axis=1) ** 2).sum(axis=1))
        out["mean"].append((np.take_along_axis(zbar - allmean, top, axis=1) ** 2).sum(axis=1))
    return {kk: _mean_se(np.concatenate(v)) for kk, v in out.items()}, "numpy"


def _cf_embedding(p):
    r = embedding_error(p["bias"], p["basis"], noise_var=p.get("noise_var", 1.0),
                        n_est=p.get("n_est", 1), m=p.get("m", 1))
    return {"embedded": r.total, "full": r.full_total}


def _mc_embedding(p, n_replicates, ss):
    w = np.asarray(p["basis"], dtype=float)
    w = w[:, None] if w.ndim == 1 else w
    b, s2 = gene_arrays(("noise_var",), bias=p["bias"], noise_var=p.get("noise_var", 1.0))
    b = np.broadcast_to(b, (w.shape[0],))
    s = np.sqrt(np.broadcast_to(s2, b.shape))
    n_est, m = p.get("n_est", 1), p.get("m", 1)
    out = {"embedded": [], "full": []}
    for size, rng in _chunks(n_replicates, w.shape[0] * (n_est + m), ss):
        truth = np.zeros(b.shape)
        pred = truth + b + s * rng.standard_normal((size, n_est, b.size)).mean(axis=1)
        obs = truth + s * rng.standard_normal((size, m, b.size)).mean(axis=1)
        diff = pred - obs
        out["embedded"].append(((diff @ w) ** 2).sum(axis=1))
        out["full"].append((diff**2).sum(axis=1))
    return {k: _mean_se(np.concatenate(v)) for k, v in out.items()}, "numpy"


CLOSED_FORMS: dict[str, tuple[Callable, Callable]] = {
    "noise_only_rho": (_cf_rho, _mc_rho),
    "noise_only_correlation": (_cf_noise_corr, _mc_noise_corr),
    "effects_correlation": (_cf_effects, _mc_effects),
    "baseline_mse": (_cf_baseline, _mc_baseline),
    "effect_estimator_mse": (_cf_effect_est, _mc_effect_est),
    "topk_mse": (_cf_topk, _mc_topk),
    "embedding_error": (_cf_embedding, _mc_embedding),
}

_REQUIRED = {"baseline_mse": ("d_test",), "topk_mse": ("d_test", "k"), "embedding_error": ("bias", "basis")}
_CORRELATION_FORMS = ("noise_only_rho", "noise_only_correlation", "effects_correlation")


def validate(closed_form: str, params: dict | None = None, *, n_replicates: int = 1000, rng=None) -> ValidationResult:
    """Check a closed form against Monte Carlo simulation.

    Parameters
    ----------
    closed_form : str
        One of ``"noise_only_rho"``, ``"noise_only_correlation"``, ``"effects_correlation"``,
        ``"baseline_mse"``, ``"effect_estimator_mse"``, ``"topk_mse"``, ``"embedding_error"``.
    params : dict, optional
        Keyword arguments of the closed form. The correlation forms take ``n``,
        ``n_controls``, ``m``, ``controls_in_train``, ``n_genes``, ``method`` (and the effect
        moments and ``noise_var`` for ``effects_correlation``) plus two simulation-only keys:
        ``n_test`` (held-out perturbations per replicate, default 4; their correlations are
        averaged within a replicate) and ``block_genes`` (genes per block when ``n_genes``
        is None, default 2000); ``noise_only_rho`` also takes ``noise="nb"`` with ``nb_mean``
        and ``nb_dispersion`` (negative binomial counts from ``sim.noise_only``: rho holds for
        any noise law with finite variance). ``baseline_mse`` and ``topk_mse`` need ``d_test``
        (``topk_mse`` also ``k``), ``embedding_error`` needs ``bias`` and ``basis``.
    n_replicates : int, default 1000
        Independent Monte Carlo replicates (blocks).
    rng : None, int, SeedSequence or Generator
        Randomness (see ``simpert._random``).

    Returns
    -------
    ValidationResult
        Closed form, Monte Carlo mean, its standard error and z per quantity:
        ``rho`` / ``pearson`` / ``spearman`` for the correlation forms; ``control``,
        ``mean`` (held-out squared error summed over genes) and ``level_control``,
        ``level_mean`` (squared error for the control level ``M``) for ``baseline_mse``;
        ``simple``, ``centroid`` (summed MSE) and ``simple_bias``, ``centroid_bias``
        (bias averaged over genes) for ``effect_estimator_mse``; ``control``, ``mean``
        for ``topk_mse``; ``embedded``, ``full`` for ``embedding_error``.

    Notes
    -----
    Data sources are listed in the module docstring: the noise-only correlation forms
    simulate with :func:`simpert.sim.noise_only`; the others draw raw Gaussian samples with
    numpy, vectorised over replicates (in chunks of bounded memory, each with a child seed,
    so the result depends only on ``rng``). In ``baseline_mse`` / ``topk_mse`` /
    ``effect_estimator_mse`` the training samples carry individual effects
    ``Dbar +- 0.5`` that average exactly to ``Dbar``; the control level is ``M = 0``.

    Examples
    --------
    >>> res = validate("noise_only_correlation", {"n": 50, "n_genes": 100}, n_replicates=200, rng=0)
    >>> res.passed()
    True
    """
    check("closed_form", closed_form, OneOf(tuple(CLOSED_FORMS)))
    check("n_replicates", n_replicates, Integer(2))
    p = dict(params or {})
    if closed_form in _CORRELATION_FORMS:
        p = {**_DESIGN_DEFAULTS, **p}
        check("n_test", p.get("n_test", 4), Integer(1))
        check("block_genes", p.get("block_genes", 2000), Integer(3))
    for key in _REQUIRED.get(closed_form, ()):
        if key not in p:
            fail("params", f"a dict with the key {key!r} for {closed_form!r}", params)
    cf_fn, mc_fn = CLOSED_FORMS[closed_form]
    cf = cf_fn(p)
    mc, source = mc_fn(p, n_replicates, as_seed_sequence(rng))
    labels = tuple(cf)
    cf_arr = np.array([cf[k] for k in labels], dtype=float)
    mean = np.array([mc[k][0] for k in labels], dtype=float)
    se = np.array([mc[k][1] for k in labels], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (mean - cf_arr) / se, np.where(mean == cf_arr, 0.0, np.inf))
    return ValidationResult(closed_form, labels, cf_arr, mean, se, z, int(n_replicates), source, p)
