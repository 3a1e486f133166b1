"""Calibration statistics of one metric on one simulated screen (one replicate).

Every statistic takes the metric's values as a table predictor x perturbation and the
metric's orientation. "Oriented" values are multiplied by +1 when higher is better and by
-1 otherwise, so that larger always means better. Definitions (DESIGN.md, "Calibration
statistics"; Miller et al. for the dynamic range fraction):

- ``drf_mean`` / ``drf_control``: per perturbation ``(pos - neg) / (best - neg)`` with
  ``pos`` the technical duplicate and ``neg`` the mean baseline (or the control
  predictor); for an error with best 0 this is ``(neg - pos) / neg``. Clipped to [-1, 1];
  median over perturbations.
- ``tau``: Kendall tau-b between the ladder's alpha and the oriented score, per
  perturbation, averaged over perturbations.
- ``auroc``: probability that the technical duplicate's oriented score beats the mean
  baseline's, over all pairs of perturbations (ties count one half).
- ``null_level``: the mean baseline's score relative to the oracle's,
  ``median(mean) / median(oracle)`` for higher-is-better metrics and
  ``median(oracle) / median(mean)`` for errors (1: the baseline looks as good as the
  truth; 0: it scores nothing). Read it on noise-only data.
- ``target_gain``: median over perturbations of the oriented difference
  ``score(target_only) - score(control)``: what a predictor earns by moving the target gene
  alone.
- ``systematic_gain``: ``score(systematic_only)`` relative to ``score(oracle)`` (same ratio
  as the null level): what the shared response alone earns; read it as B grows.
- ``specificity``: median over perturbations of the oriented difference
  ``score(oracle) - score(shuffled)``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = [
    "STATISTICS",
    "ladder_alpha",
    "drf",
    "ladder_tau",
    "auroc",
    "relative_level",
    "oriented_gain",
    "replicate_statistics",
]

#: Statistic names in the order tables show them.
STATISTICS = (
    "drf_mean",
    "drf_control",
    "tau",
    "auroc",
    "null_level",
    "target_gain",
    "systematic_gain",
    "specificity",
)

_LADDER = re.compile(r"^ladder\(\s*([0-9.eE+-]+)\s*\)$")


def ladder_alpha(name: str) -> float | None:
    """Alpha of a ladder predictor name such as ``"ladder(0.25)"``; None otherwise."""
    m = _LADDER.match(str(name))
    return float(m.group(1)) if m else None


def _nanmedian(x) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def drf(pos, neg, best: float | None) -> float:
    """Dynamic range fraction (Miller et al.), median over perturbations.

    Parameters
    ----------
    pos, neg : array_like, shape (P,)
        The positive (technical duplicate) and negative (baseline) predictor's values.
    best : float or None
        The metric's best value (1 for a correlation, 0 for an error); None or a
        non-finite value gives NaN.

    Returns
    -------
    float
        ``median_p clip((pos_p - neg_p) / (best - neg_p), -1, 1)``; NaN entries ignored.
    """
    if best is None or not np.isfinite(best):
        return float("nan")
    pos = np.asarray(pos, dtype=float)
    neg = np.asarray(neg, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (pos - neg) / (best - neg)
    frac[~np.isfinite(frac)] = np.nan
    return _nanmedian(np.clip(frac, -1.0, 1.0))


def ladder_tau(alphas, scores) -> float:
    """Kendall tau-b of alpha against the oriented score, averaged over perturbations.

    Parameters
    ----------
    alphas : array_like, shape (K,)
        Distinct ladder alphas.
    scores : array_like, shape (K, P)
        Oriented scores of each rung for each perturbation.

    Returns
    -------
    float
        Mean over perturbations of tau-b (perturbations whose scores are all tied or
        missing are skipped); NaN when fewer than two rungs.
    """
    a = np.asarray(alphas, dtype=float)
    s = np.asarray(scores, dtype=float)
    if a.size < 2:
        return float("nan")
    i, j = np.triu_indices(a.size, 1)
    da = np.sign(a[i] - a[j])[:, None]
    ds = np.sign(s[i] - s[j])
    valid = np.isfinite(ds)
    ds = np.where(valid, ds, 0.0)
    num = (da * ds).sum(axis=0)
    n0 = valid.sum(axis=0)
    untied = (valid & (ds != 0)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = num / np.sqrt(n0 * untied)
    tau[~np.isfinite(tau)] = np.nan
    if np.all(np.isnan(tau)):
        return float("nan")
    return float(np.nanmean(tau))


def auroc(pos, neg) -> float:
    """Area under the ROC curve separating ``pos`` from ``neg`` (oriented scores).

    Parameters
    ----------
    pos, neg : array_like
        Oriented scores of the two predictors over perturbations; NaN entries dropped.

    Returns
    -------
    float
        ``P(pos > neg) + P(pos == neg) / 2`` over all pairs; NaN if either is empty.
    """
    x = np.asarray(pos, dtype=float)
    y = np.asarray(neg, dtype=float)
    x = x[np.isfinite(x)]
    y = y[np.isfinite(y)]
    if not x.size or not y.size:
        return float("nan")
    d = x[:, None] - y[None, :]
    return float(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size)


def relative_level(a, b, higher_is_better: bool) -> float:
    """Score of ``a`` relative to ``b``: median ratio oriented so that 1 means "as good".

    Returns ``median(a) / median(b)`` when higher is better and ``median(b) / median(a)``
    for errors; NaN when the denominator is 0 or a median is missing.
    """
    ma, mb = _nanmedian(a), _nanmedian(b)
    num, den = (ma, mb) if higher_is_better else (mb, ma)
    if not np.isfinite(num) or not np.isfinite(den) or den == 0:
        return float("nan")
    return float(num / den)


def oriented_gain(a, b, higher_is_better: bool) -> float:
    """Median over perturbations of the oriented paired difference ``a - b``."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return _nanmedian(d if higher_is_better else -d)


def replicate_statistics(wide: pd.DataFrame, *, higher_is_better: bool, best: float | None) -> dict:
    """All statistics of :data:`STATISTICS` for one metric on one replicate.

    Parameters
    ----------
    wide : DataFrame
        Predictor x perturbation values of one metric. Missing predictors give NaN for
        the statistics that need them.
    higher_is_better : bool
        The metric's orientation.
    best : float or None
        The metric's best value.

    Returns
    -------
    dict
        Statistic name -> float.
    """
    sign = 1.0 if higher_is_better else -1.0
    nan = np.full(wide.shape[1], np.nan)

    def row(name):
        return wide.loc[name].to_numpy(dtype=float) if name in wide.index else nan

    dup, mean, control = row("technical_duplicate"), row("mean"), row("control")
    oracle = row("oracle")
    rungs = sorted((a, n) for n in wide.index if (a := ladder_alpha(n)) is not None)
    if rungs:
        alphas = [a for a, _ in rungs]
        scores = sign * wide.loc[[n for _, n in rungs]].to_numpy(dtype=float)
        tau = ladder_tau(alphas, scores)
    else:
        tau = float("nan")
    return {
        "drf_mean": drf(dup, mean, best),
        "drf_control": drf(dup, control, best),
        "tau": tau,
        "auroc": auroc(sign * dup, sign * mean),
        "null_level": relative_level(mean, oracle, higher_is_better),
        "target_gain": oriented_gain(row("target_only"), control, higher_is_better),
        "systematic_gain": relative_level(row("systematic_only"), oracle, higher_is_better),
        "specificity": oriented_gain(oracle, row("shuffled"), higher_is_better),
    }
