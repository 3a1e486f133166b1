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
- ``null_level``: read on noise-only data. How much credit the metric gives the mean
  baseline when there is nothing to predict, as a skill score (Murphy 1988) against the
  technical duplicate: ``(s(mean) - s(dup)) / (best - s(dup))`` on medians over
  perturbations, oriented by the sign of ``best - s(dup)`` so that it means the same for
  errors and for similarities, clipped to [-1, 1] (see :func:`null_level`). 0: the mean
  baseline scores like an independent replicate (chance); 1: it scores perfectly.
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
    "null_level",
    "oriented_gain",
    "replicate_statistics",
    "STATISTIC_INPUTS",
    "undefined_reason",
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

#: Predictors each statistic reads ("ladder" stands for the ladder's rungs).
STATISTIC_INPUTS = {
    "drf_mean": ("technical_duplicate", "mean"),
    "drf_control": ("technical_duplicate", "control"),
    "tau": ("ladder",),
    "auroc": ("technical_duplicate", "mean"),
    "null_level": ("mean", "technical_duplicate"),
    "target_gain": ("target_only", "control"),
    "systematic_gain": ("systematic_only", "oracle"),
    "specificity": ("oracle", "shuffled"),
}

# predictions that are the same for every perturbation: a score of their centred (or of a
# zero) change is undefined for correlations
_CONSTANT = {"mean": "the mean baseline", "control": "the control baseline",
             "systematic_only": "systematic-only"}

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


def null_level(mean, dup, best: float | None, higher_is_better: bool, *, oracle=None) -> float:
    """Credit the metric gives the mean baseline on data without signal (a skill score).

    ``(m - d) / (c - d)`` with ``m`` and ``d`` the medians over perturbations of the mean
    baseline's and the technical duplicate's scores and ``c`` the ceiling: the metric's
    best value (the oracle's median when the metric has none). Read on noise-only data,
    where nothing can be predicted:

    - the technical duplicate is an independent replicate with its own controls, so it
      shares no noise with the observation: its score is the metric's chance level for
      that design (about 0 for a correlation of deltas);
    - the mean baseline carries no perturbation-specific information either, so a metric
      that rewards information gives it no more than chance (0); a metric fooled by noise
      the prediction shares with the observation (the control profile, for
      control-referenced deltas) gives it a large share of the range to the best value
      (the PEREGGRN illusion: about 0.7 for ``pearson_delta`` with one control).

    The ceiling is the metric's nominal best rather than the oracle's score because on
    noise-only data the oracle is the "no effect" prediction too, and the mean baseline
    is that same prediction up to training noise: any ratio of the mean baseline to the
    oracle is about 1 for every metric, whatever its orientation, and says nothing. The
    formula is the same for errors and similarities (numerator and denominator change
    sign together). For a squared error against a noisy observation the value is at most
    about 1/2 (an exact prediction has half the expected error of a replicate); what a
    metric grants beyond that comes from noise shared with the observation. A metric
    scored against the truth itself (not a real metric) also scores high: on noise-only
    data the mean baseline is nearly the truth.

    Parameters
    ----------
    mean, dup : array_like, shape (P,)
        Scores of the mean baseline and of the technical duplicate.
    best : float or None
        The metric's best value; None or non-finite uses the oracle's median.
    higher_is_better : bool
        Orientation (used only to check that the ceiling lies on the better side).
    oracle : array_like, optional
        Scores of the oracle (the ceiling when ``best`` is unknown).

    Returns
    -------
    float
        Clipped to [-1, 1]; NaN when a median is missing (for instance the mean
        baseline's score is undefined on every perturbation, as a correlation of a
        constant centred prediction) or the ceiling does not lie on the better side of
        the duplicate's score.
    """
    m, d = _nanmedian(mean), _nanmedian(dup)
    c = float(best) if best is not None and np.isfinite(best) else _nanmedian(
        oracle if oracle is not None else [])
    if not (np.isfinite(m) and np.isfinite(d) and np.isfinite(c)):
        return float("nan")
    room = c - d
    if (room <= 0) if higher_is_better else (room >= 0):
        return float("nan")
    return float(np.clip((m - d) / room, -1.0, 1.0))


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
        "null_level": null_level(mean, dup, best, higher_is_better, oracle=oracle),
        "target_gain": oriented_gain(row("target_only"), control, higher_is_better),
        "systematic_gain": relative_level(row("systematic_only"), oracle, higher_is_better),
        "specificity": oriented_gain(oracle, row("shuffled"), higher_is_better),
    }


def undefined_reason(wide: pd.DataFrame, statistic: str, *, best: float | None) -> str:
    """Why ``statistic`` is NaN on one replicate's scores (one short clause).

    Parameters
    ----------
    wide : DataFrame
        Predictor x perturbation values of one metric (as for :func:`replicate_statistics`).
    statistic : str
        One of :data:`STATISTICS`.
    best : float or None
        The metric's best value.

    Returns
    -------
    str
        The first cause found: a predictor missing from the run, a predictor whose score is
        NaN on every perturbation (for a prediction that is the same for every
        perturbation, typically a correlation of its centred or control-referenced change,
        whose spread is zero), the metric's unknown best value, or a zero denominator.
    """
    for name in STATISTIC_INPUTS[statistic]:
        if name == "ladder":
            rungs = [n for n in wide.index if ladder_alpha(n) is not None]
            if len(rungs) < 2:
                return "fewer than two ladder rungs in the run"
            vals = wide.loc[rungs].to_numpy(dtype=float)
            if not np.isfinite(vals).any():
                return "the ladder's scores are NaN on every perturbation"
            return "the ladder's scores are tied or NaN on every perturbation"
        if name not in wide.index:
            return f"predictor {name!r} is not in the run"
        if not np.isfinite(wide.loc[name].to_numpy(dtype=float)).any():
            who = _CONSTANT.get(name, name.replace("_", " "))
            extra = (": it predicts the same profile for every perturbation, and e.g. a correlation "
                     "of a centred or zero change is 0/0") if name in _CONSTANT else ""
            return f"the score of {who} is NaN on every perturbation{extra}"
    if statistic in ("drf_mean", "drf_control") and (best is None or not np.isfinite(best)):
        return "the metric states no best value"
    if statistic == "null_level":
        return "the best value does not lie above the technical duplicate's score (no room)"
    if statistic == "systematic_gain":
        return "the oracle's median score is 0"
    return "zero denominator or no finite paired values"
