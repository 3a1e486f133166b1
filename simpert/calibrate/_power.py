"""Power: how many test perturbations are needed to tell two models apart with a metric?

A statistician comparing two models on a screen runs a paired test over the test
perturbations (:func:`simpert.metrics.compare`). With ``d_p`` the paired difference of the
metric for perturbation ``p``, mean ``delta`` and standard deviation ``sigma`` within a
screen, the paired t-test at level ``alpha`` has power

    1 - T(t_{1-alpha/2, n-1}; n - 1, ncp) + T(-t_{1-alpha/2, n-1}; n - 1, ncp),
    ncp = delta sqrt(n) / sigma

(noncentral t), and the normal approximation gives ``n = ((z_{1-alpha/2} + z_{power})
sigma / delta)^2``. Both assume normal differences; real paired differences of a metric are
often heavy-tailed (a few perturbations with extreme values in some screens), which makes
them conservative. :func:`power` therefore estimates the power curve by resampling the
paired differences of pilot simulations of the scenario (a pilot screen drawn at random,
then ``n`` of its perturbations, the t-test applied), and reports the
smallest ``n`` reaching the target power, with the noncentral-t and normal answers beside
it. :func:`power_check` measures the power of a given ``n`` by Monte Carlo on new screens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.stats as st

from .._random import as_seed_sequence
from .._validation import Integer, Interval, check, fail
from ._pipeline import default_simulate
from ._scenarios import Scenario, load_scenario

__all__ = ["power", "power_check", "PowerResult", "t_test_power", "pilot_differences", "sample_sizes"]


def t_test_power(n: int, delta: float, sigma: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs.

    Parameters
    ----------
    n : int
        Number of pairs (test perturbations), at least 2.
    delta, sigma : float
        Mean and standard deviation of the paired differences.
    alpha : float, default 0.05

    Returns
    -------
    float
    """
    if n < 2 or not np.isfinite(delta) or not np.isfinite(sigma):
        return float("nan")
    if sigma == 0:
        return 1.0 if delta != 0 else alpha
    df = n - 1
    ncp = delta * math.sqrt(n) / sigma
    t = st.t.ppf(1 - alpha / 2, df)
    # both tails as upper tails: scipy's nct.cdf(-t, df, ncp) is NaN for a large ncp where the
    # probability is 0 (e.g. df 1, ncp 11); nct.sf(t, df, -|ncp|) gives it
    ncp = abs(ncp)
    return float(st.nct.sf(t, df, ncp) + st.nct.sf(t, df, -ncp))


def _n_required(delta, sigma, alpha, target, n_max=100_000):
    if not np.isfinite(delta) or not np.isfinite(sigma) or delta == 0:
        return np.nan, np.nan
    z = (st.norm.ppf(1 - alpha / 2) + st.norm.ppf(target)) * sigma / abs(delta)
    normal = max(2, math.ceil(z * z))
    n = max(2, normal - 5)
    while n <= n_max and not t_test_power(n, delta, sigma, alpha) >= target:
        n += 1
    return (n if n <= n_max else np.nan), normal


def _resampled_power(pilots: list, n: int, alpha: float, n_resamples: int, rng) -> float:
    """Fraction of resampled t-tests that reject: a pilot screen at random, n of its differences
    (without replacement when the pilot has at least n, as a screen with n test perturbations
    would have them; with replacement beyond)."""
    g = np.random.default_rng(rng)
    which = g.integers(0, len(pilots), n_resamples)
    hits = 0
    for k, d in enumerate(pilots):
        m = int(np.sum(which == k))
        if m == 0:
            continue
        if n <= d.size:  # a subset of the pilot's perturbations: a screen with n test perturbations
            draw = d[np.argsort(g.random((m, d.size)), axis=1)[:, :n]]
        else:
            draw = d[g.integers(0, d.size, size=(m, n))]
        mean = draw.mean(axis=1)
        sd = draw.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = mean / (sd / math.sqrt(n))
        p = np.where(sd > 0, 2 * st.t.sf(np.abs(t), n - 1), np.where(mean != 0, 0.0, 1.0))
        hits += int(np.sum(p < alpha))
    return hits / n_resamples


def _n_resampled(pilots, alpha, target, n_resamples, rng, n_max=5000):
    if not pilots:
        return np.nan
    lo, hi = 2, 2
    while _resampled_power(pilots, hi, alpha, n_resamples, rng) < target:
        lo = hi + 1
        hi *= 2
        if hi > n_max:
            return np.nan
    while lo < hi:  # smallest n in [lo, hi] reaching the target
        mid = (lo + hi) // 2
        if _resampled_power(pilots, mid, alpha, n_resamples, rng) >= target:
            hi = mid
        else:
            lo = mid + 1
    return hi


def _scenario_with(sc: Scenario, **params) -> Scenario:
    p = sc.params_dict()
    p.update({k: v for k, v in params.items() if v is not None})
    return replace(sc, params=p)


def _screen_values(sc, metrics, predictors, n_test, n_train, seed_seq, options) -> pd.DataFrame:
    """Per-perturbation values of every predictor and metric on one simulated screen."""
    from simpert import metrics as sp_metrics
    from simpert import predict

    s_sim, s_split, s_make = seed_seq.spawn(3)
    adata = default_simulate(sc, rng=s_sim)
    control = str(adata.uns["simpert"]["control"])
    perts = [p for p in adata.obs["perturbation"].cat.categories if p != control]
    order = np.random.default_rng(s_split).permutation(len(perts))
    test = tuple(perts[i] for i in order[:n_test])
    train = tuple(perts[i] for i in order[n_test:n_test + n_train])
    split = predict.Split(train=train, test=test, control=control)
    needs_cells = any(bool(sp_metrics.get(m).needs & {"cells", "de"}) for m in metrics)
    preds = predict.make(adata, split, list(predictors), rng=s_make, cells=needs_cells)
    return sp_metrics.score(preds, adata, split, metrics=list(metrics), options=options)


def pilot_differences(metrics, scenario, pairs, *, cells_per_perturbation=None, n_pilot: int = 5,
                      n_pilot_test: int = 60, n_train: int = 40, options=None, rng=0) -> pd.DataFrame:
    """Paired differences of predictor pairs on pilot simulations of a scenario.

    Parameters
    ----------
    metrics : list of str
        Registered metrics.
    scenario : str, dict, Scenario or parameter object
        A count-screen scenario.
    pairs : list of (str, str)
        Predictor pairs; the difference is first minus second.
    cells_per_perturbation : float or list of float, optional
        Settings (default: the scenario's).
    n_pilot, n_pilot_test, n_train : int
        Pilot screens per setting, their test and training perturbations.
    options : mapping, optional
        Metric options.
    rng : seed, default 0

    Returns
    -------
    DataFrame
        Columns ``cells_per_perturbation``, ``pilot``, ``pair`` ("a - b"), ``metric``,
        ``perturbation``, ``d``.
    """
    from simpert import metrics as sp_metrics

    for m in metrics:
        if not isinstance(m, str):
            fail("metric", "a registered metric name", m, exc=TypeError)
        sp_metrics.get(m)
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)
                and pair[0] != pair[1]):
            fail("predictors", "two different predictor names", pair)
    check("n_pilot", n_pilot, Integer(1))
    check("n_pilot_test", n_pilot_test, Integer(3))
    check("n_train", n_train, Integer(1))
    sc = load_scenario(scenario)
    if sc.kind != "screen":
        fail("scenario", "a count screen scenario (kind 'screen')", sc.kind)
    cells = [None] if cells_per_perturbation is None else (
        [cells_per_perturbation] if np.isscalar(cells_per_perturbation) else list(cells_per_perturbation))
    for c in cells:
        check("cells_per_perturbation", c, Interval(0, None, "neither", allow_none=True))
    predictors = sorted({p for pair in pairs for p in pair})
    frames = []
    for c, ss in zip(cells, as_seed_sequence(rng).spawn(len(cells))):
        sc_c = _scenario_with(sc, n_perturbations=n_pilot_test + n_train, cells_per_perturbation=c)
        setting = float(c if c is not None else sc.params_dict().get("cells_per_perturbation", 100.0))
        for k, child in enumerate(ss.spawn(n_pilot)):
            t = _screen_values(sc_c, metrics, predictors, n_pilot_test, n_train, child, options)
            wide = t.pivot_table(index=["metric", "perturbation"], columns="predictor", values="value",
                                 aggfunc="first").reset_index()
            for a, b in pairs:
                frames.append(pd.DataFrame({"cells_per_perturbation": setting, "pilot": k, "pair": f"{a} - {b}",
                                            "metric": wide["metric"], "perturbation": wide["perturbation"],
                                            "d": wide[a].to_numpy(dtype=float) - wide[b].to_numpy(dtype=float)}))
    return pd.concat(frames, ignore_index=True)


def sample_sizes(differences: pd.DataFrame, *, alpha: float = 0.05, target: float = 0.8,
                 n_resamples: int = 4000, rng=0) -> pd.DataFrame:
    """Test perturbations needed per setting, pair and metric, from pilot differences.

    Parameters
    ----------
    differences : DataFrame
        As returned by :func:`pilot_differences`.
    alpha, target : float
        Test level and power to reach.
    n_resamples : int, default 4000
        Resampled t-tests per candidate ``n``.
    rng : seed, default 0

    Returns
    -------
    DataFrame
        One row per (cells_per_perturbation, pair, metric): ``delta``, ``sigma``,
        ``delta_sd_between`` (SD of the mean difference from screen to screen: when it is
        not small against ``delta``, the power is an average over screens and needs many
        pilot screens to estimate), ``effect_size``, ``n_required`` (resampling), ``n_t``
        (noncentral t), ``n_normal``, ``n_pilot_pairs``.
    """
    check("alpha", alpha, Interval(0, 1, "neither"))
    check("power", target, Interval(0, 1, "neither"))
    check("n_resamples", n_resamples, Integer(100))
    rows = []
    keys = ["cells_per_perturbation", "pair", "metric"]
    groups = list(differences.groupby(keys, sort=False))
    for (c, pair, m), g in groups:
        pilots, ds, sds = [], [], []
        for _, gp in g.groupby("pilot"):
            d = gp["d"].to_numpy(dtype=float)
            d = d[np.isfinite(d)]
            if d.size >= 2:
                pilots.append(d)
                ds.append(d.mean())
                sds.append(d.var(ddof=1))
        delta = float(np.mean(ds)) if ds else np.nan
        sigma = float(np.sqrt(np.mean(sds))) if sds else np.nan
        n_t, n_norm = _n_required(delta, sigma, alpha, target)
        n_req = _n_resampled(pilots, alpha, target, n_resamples, np.random.SeedSequence(
            as_seed_sequence(rng).entropy, spawn_key=(len(rows),)))
        between = float(np.std(ds, ddof=1)) if len(ds) > 1 else np.nan
        rows.append(dict(cells_per_perturbation=c, pair=pair, metric=m, delta=delta, sigma=sigma,
                         delta_sd_between=between,
                         effect_size=delta / sigma if sigma else np.nan, n_required=n_req, n_t=n_t,
                         n_normal=n_norm, n_pilot_pairs=int(sum(p.size for p in pilots))))
    return pd.DataFrame(rows)


@dataclass
class PowerResult:
    """Sample sizes for telling two predictors apart with one metric.

    Attributes
    ----------
    table : DataFrame
        One row per cells-per-perturbation setting: ``delta`` (mean paired difference,
        first minus second predictor), ``sigma`` (its within-screen SD), ``effect_size``
        (delta / sigma), ``n_required`` (smallest number of test perturbations reaching the
        power, by resampling the pilot differences), ``n_t`` (noncentral t) and ``n_normal``
        (normal approximation) for comparison, ``n_pilot_pairs``.
    metric : str
    predictors : tuple of str
    alpha, target : float
    scenario : Scenario
    """

    table: pd.DataFrame
    metric: str
    predictors: tuple
    alpha: float
    target: float
    scenario: Scenario

    def summary(self):
        """The table with one line saying what it answers.

        Returns
        -------
        simpert.metrics.EvaluationSummary
        """
        from ..metrics._evaluate import EvaluationSummary

        return EvaluationSummary(self.table.round(4), [
            f"test perturbations needed to tell {self.predictors[0]} from {self.predictors[1]} with "
            f"{self.metric}: paired t-test, alpha {self.alpha:g}, power {self.target:.0%} "
            f"(scenario {self.scenario.name})"])


def _check_common(metric, predictors, alpha, target):
    if not isinstance(metric, str):
        fail("metric", "a registered metric name", metric, exc=TypeError)
    from simpert import metrics as sp_metrics

    sp_metrics.get(metric)
    if not (isinstance(predictors, (tuple, list)) and len(predictors) == 2
            and all(isinstance(p, str) for p in predictors) and predictors[0] != predictors[1]):
        fail("predictors", "two different predictor names", predictors)
    check("alpha", alpha, Interval(0, 1, "neither"))
    check("power", target, Interval(0, 1, "neither"))


def power(metric: str, scenario, *, predictors=("technical_duplicate", "mean"), cells_per_perturbation=None,
          n_pilot: int = 5, n_pilot_test: int = 60, n_train: int = 40, alpha: float = 0.05,
          target: float = 0.8, options=None, n_resamples: int = 4000, rng=0) -> PowerResult:
    """Test perturbations needed to tell two predictors apart with a metric.

    Parameters
    ----------
    metric : str
        A registered metric.
    scenario : str, dict, Scenario or parameter object
        The screen (see :func:`simpert.calibrate.load_scenario`), e.g. one fitted to your
        data with :func:`simpert.sim.estimate_params`.
    predictors : pair of str, default ("technical_duplicate", "mean")
        The two models; e.g. ``("ladder(0.75)", "ladder(0.5)")`` for one ladder step.
    cells_per_perturbation : float or list of float, optional
        Settings to evaluate (default: the scenario's).
    n_pilot : int, default 5
        Pilot screens per setting.
    n_pilot_test : int, default 60
        Test perturbations per pilot screen (sample sizes up to it are resampled without
        replacement, exactly as a screen of that size draws them).
    n_train : int, default 40
        Training perturbations per screen (the mean baseline and the ladder depend on it:
        keep it as in the study being planned).
    alpha : float, default 0.05
    target : float, default 0.8
        Power to reach.
    options : mapping, optional
        Metric options.
    n_resamples : int, default 4000
        Resampled t-tests per candidate ``n``.
    rng : seed, default 0

    Returns
    -------
    PowerResult
    """
    _check_common(metric, predictors, alpha, target)
    check("n_resamples", n_resamples, Integer(100))
    sc = load_scenario(scenario)
    root = as_seed_sequence(rng)
    s_pilot, s_resample = root.spawn(2)
    diffs = pilot_differences([metric], sc, [tuple(predictors)], cells_per_perturbation=cells_per_perturbation,
                              n_pilot=n_pilot, n_pilot_test=n_pilot_test, n_train=n_train, options=options,
                              rng=s_pilot)
    table = sample_sizes(diffs, alpha=alpha, target=target, n_resamples=n_resamples, rng=s_resample)
    table = table.drop(columns=["pair", "metric"]).reset_index(drop=True)
    return PowerResult(table, metric, tuple(predictors), alpha, target, sc)


def power_check(metric: str, scenario, n: int, *, predictors=("technical_duplicate", "mean"),
                cells_per_perturbation=None, n_sim: int = 200, n_train: int = 40,
                alpha: float = 0.05, options=None, rng=1) -> dict:
    """Monte Carlo power of the paired t-test with ``n`` test perturbations.

    Parameters
    ----------
    metric, scenario, predictors, cells_per_perturbation, n_train, alpha, options
        As in :func:`power`.
    n : int
        Test perturbations per simulated screen.
    n_sim : int, default 200
        Simulated screens.
    rng : seed, default 1

    Returns
    -------
    dict
        ``power`` (fraction of screens where the test rejects), ``se`` (its binomial SE),
        ``n_sim``.
    """
    _check_common(metric, predictors, alpha, 0.5)
    check("n", n, Integer(2))
    check("n_sim", n_sim, Integer(1))
    check("n_train", n_train, Integer(1))
    sc = load_scenario(scenario)
    sc_n = _scenario_with(sc, n_perturbations=n + n_train, cells_per_perturbation=cells_per_perturbation)
    hits = 0
    total = 0
    for child in as_seed_sequence(rng).spawn(n_sim):
        t = _screen_values(sc_n, [metric], tuple(predictors), n, n_train, child, options)
        wide = t.pivot_table(index="perturbation", columns="predictor", values="value", aggfunc="first")
        a, b = wide[predictors[0]].to_numpy(dtype=float), wide[predictors[1]].to_numpy(dtype=float)
        d = (a - b)[np.isfinite(a) & np.isfinite(b)]
        if d.size < 2:
            continue
        total += 1
        p = 0.0 if np.all(d == d[0]) and d[0] != 0 else st.ttest_1samp(d, 0.0).pvalue
        hits += bool(p < alpha)
    pw = hits / total if total else float("nan")
    return {"power": pw, "se": math.sqrt(pw * (1 - pw) / total) if total else float("nan"), "n_sim": total}

