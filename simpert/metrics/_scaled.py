"""The Virtual Cell Challenge's baseline-scaled score (cell-eval ``score_agg_metrics``)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ._registry import get

__all__ = ["scaled_score"]


def _left_out(metric: str) -> bool:
    """Whether cell-eval leaves a perturbation out of its table where this metric is NaN.

    cell-eval's DE metrics emit no row for a perturbation without real significant genes
    (simpert reports NaN there); its results table is pivoted and summarised by polars'
    ``describe()``, which skips the resulting nulls. Its profile metrics store NaN, which
    propagates into the mean.
    """
    try:
        return "de" in get(metric).needs
    except (ValueError, TypeError):
        return False


def _statistic(metric: str, v: np.ndarray, statistic: str) -> float:
    if _left_out(metric):
        v = v[~np.isnan(v)]
        if v.size == 0:
            return np.nan
    return float(np.mean(v)) if statistic == "mean" else float(np.median(v))


def _aggregate(scores, statistic):
    if isinstance(scores, pd.DataFrame):
        if not {"metric", "value"} <= set(scores.columns):
            raise ValueError(
                "parameter 'scores' must be a tidy table with columns 'metric' and 'value'; "
                f"got columns {list(scores.columns)}"
            )
        if "predictor" in scores.columns and scores["predictor"].nunique() > 1:
            raise ValueError(
                "parameter 'scores' must hold one predictor; got "
                f"{sorted(scores['predictor'].unique())[:5]}"
            )
        g = scores.groupby("metric", sort=False)["value"]
        return pd.Series({m: _statistic(m, v.to_numpy(dtype=float), statistic) for m, v in g}, dtype=float)
    if isinstance(scores, (Mapping, pd.Series)):
        return pd.Series(dict(scores), dtype=float)
    raise TypeError(
        f"parameter 'scores' must be a tidy DataFrame, a Series or a mapping; got {type(scores).__name__}"
    )


def scaled_score(scores, baseline_scores, *, statistic: str = "mean") -> pd.DataFrame:
    """Score a predictor relative to a baseline, as the Virtual Cell Challenge does.

    For each metric with best value 1, ``(u - b) / (1 - b)``; with best value 0,
    ``1 - u / b``; ``u`` and ``b`` are the predictor's and the baseline's mean over
    perturbations. NaN becomes 0, values below 0 are clipped to 0, and ``avg_score`` is
    the mean over metrics (the leaderboard multiplies it by 100). Metrics without a
    best value of 0 or 1 are skipped, as cell-eval skips them. Follows cell-eval 0.8.2
    ``cell_eval/_score.py`` (``score_agg_metrics``) on the table of
    ``_pipeline/_runner.py`` (``get_agg_results``: pivot, then polars ``describe()``).

    Perturbations where a DE metric is NaN (no real significant genes) are left out of
    that metric's mean, as cell-eval emits no row for them; NaN values of the other
    metrics propagate into the mean, as they do in polars.

    Parameters
    ----------
    scores, baseline_scores : DataFrame, Series or mapping
        Tidy tables from :func:`simpert.metrics.score` (one predictor each), or
        aggregated values per metric name.
    statistic : {"mean", "median"}, default "mean"
        How per-perturbation values are aggregated.

    Returns
    -------
    DataFrame
        Columns ``metric`` and ``from_baseline``; the last row is ``avg_score``.
    """
    if statistic not in ("mean", "median"):
        raise ValueError(f"parameter 'statistic' must be one of 'mean', 'median'; got {statistic!r}")
    u = _aggregate(scores, statistic)
    b = _aggregate(baseline_scores, statistic)
    missing = sorted(set(u.index) ^ set(b.index))
    if missing:
        raise ValueError(
            f"parameter 'baseline_scores' must cover the same metrics as 'scores'; differing: {missing[:5]}"
        )
    zero, one = [], []
    for m in u.index:
        best = get(m).best
        if best == 0:
            zero.append(m)
        elif best == 1:
            one.append(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        vz = 1.0 - u[zero].to_numpy() / b[zero].to_numpy()
        vo = (u[one].to_numpy() - b[one].to_numpy()) / (1.0 - b[one].to_numpy())
    vals = np.concatenate([vz, vo])
    vals[np.isnan(vals)] = 0.0
    vals = np.clip(vals, 0.0, None)
    avg = vals.mean() if vals.size else np.nan
    return pd.DataFrame(
        {"metric": list(zero) + list(one) + ["avg_score"], "from_baseline": np.append(vals, avg)}
    )
