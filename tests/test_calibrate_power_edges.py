"""Power's edge cases by hand and by statsmodels; a summary's default notes; power_check's bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from statsmodels.stats.power import TTestPower

import simpert as sp
from simpert.calibrate import STATISTICS
from simpert.calibrate._results import CalibrationSummary


def test_power_without_spread_is_certain_unless_there_is_no_difference():
    # sigma = 0: every paired difference equals delta; the test rejects surely when delta != 0
    # and at level alpha when it is 0 (kills mutants of `delta != 0` and of the 1.0)
    assert sp.calibrate.t_test_power(5, 0.3, 0.0) == 1.0
    assert sp.calibrate.t_test_power(5, -0.3, 0.0) == 1.0
    assert sp.calibrate.t_test_power(5, 0.0, 0.0) == 0.05
    assert sp.calibrate.t_test_power(5, 0.0, 0.0, alpha=0.01) == 0.01


@pytest.mark.parametrize("n,delta,sigma,alpha", [(2, 3.0, 1.0, 0.05), (3, 0.5, 1.2, 0.05), (10, -0.4, 1.0, 0.01),
                                                 (40, 0.2, 0.7, 0.1), (7, 0.0, 1.0, 0.05)])
def test_t_test_power_equals_statsmodels(n, delta, sigma, alpha):
    want = TTestPower().power(effect_size=abs(delta) / sigma, nobs=n, alpha=alpha, alternative="two-sided")
    assert sp.calibrate.t_test_power(n, delta, sigma, alpha) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_t_test_power_is_undefined_below_two_pairs_or_for_infinite_inputs():
    assert math.isnan(sp.calibrate.t_test_power(1, 1.0, 1.0))
    assert math.isnan(sp.calibrate.t_test_power(5, float("inf"), 1.0))
    assert math.isnan(sp.calibrate.t_test_power(5, 1.0, float("nan")))


def _differences(values):
    return pd.DataFrame({"cells_per_perturbation": 10.0, "pair": "a - b", "metric": "m", "pilot": 0,
                         "perturbation": [f"p{i}" for i in range(len(values))], "d": values})


def _power_by_integration(n, delta, sigma, alpha):
    """P(|T| > t) for T = (Z + ncp) / sqrt(V / df), V ~ chi2(df): one integral over V."""
    df, ncp = n - 1, delta * math.sqrt(n) / sigma
    t = stats.t.ppf(1 - alpha / 2, df)

    def f(v):
        s = t * math.sqrt(v / df)
        return stats.chi2.pdf(v, df) * (stats.norm.cdf(-s - ncp) + stats.norm.sf(s - ncp))

    return integrate.quad(f, 0, np.inf, limit=200)[0]


@pytest.mark.parametrize("n,delta", [(2, 8.0), (2, 20.0), (2, 50.0), (3, 10.0), (4, 1.0), (12, 0.5)])
def test_t_test_power_by_integration_where_the_lower_tail_underflows(n, delta):
    # scipy's nct.cdf(-t, df, ncp) is NaN for df 1 and ncp above about 11 (its value is ~0);
    # the power is the upper tail there, checked by integrating over the chi-square
    got = sp.calibrate.t_test_power(n, delta, 1.0)
    assert np.isfinite(got)
    assert got == pytest.approx(_power_by_integration(n, delta, 1.0, 0.05), abs=1e-7)


def _standardised(mean, n=30):
    v = np.random.default_rng(0).normal(size=n)
    return (v - v.mean()) / v.std(ddof=1) + mean


@pytest.mark.parametrize("delta,want", [(20.0, 2), (8.0, 3)])
def test_the_smallest_sample_for_large_effects(delta, want):
    # the search starts at max(2, normal - 5); with a difference of 20 SDs two pairs (a t-test
    # with 1 df) reach 80% power, with 8 SDs they do not (0.63 by integration) and three do
    assert _power_by_integration(want, delta, 1.0, 0.05) >= 0.8
    if want > 2:
        assert _power_by_integration(want - 1, delta, 1.0, 0.05) < 0.8
    row = sp.calibrate.sample_sizes(_differences(_standardised(delta)), n_resamples=200).iloc[0]
    assert row["n_t"] == want  # noncentral t
    assert row["n_required"] == want  # resampled pilots
    assert row["n_normal"] == 2  # ceil(((1.96 + 0.84) sigma / delta)^2) <= 1, raised to 2


def _long(ns):
    rows = [("m", "s", st, float("nan") if n == 0 else 0.5, float("nan"), n, float("nan"))
            for st, n in zip(STATISTICS, ns)]
    return pd.DataFrame(rows, columns=["metric", "scenario", "statistic", "mean", "se", "n", "B"])


def test_default_notes_name_exactly_the_statistics_undefined_in_every_replicate():
    ns = [3] * len(STATISTICS)
    ns[1] = 0
    ns[4] = 0
    s = CalibrationSummary(_long(ns), None, ["m"], ["s"], {}, pd.DataFrame())
    assert list(s.notes["statistic"]) == [STATISTICS[1], STATISTICS[4]]
    assert set(s.notes["reason"]) == {"undefined in every replicate"}
    s = CalibrationSummary(_long([3] * len(STATISTICS)), None, ["m"], ["s"], {}, pd.DataFrame())
    assert s.notes.empty


def test_power_check_counts_screens_and_reports_a_binomial_se():
    # a technical duplicate against the control baseline on a strong screen: every simulated
    # screen rejects; the reported SE is sqrt(p (1 - p) / n_sim)
    sc = {"scenario": {"name": "strong", "kind": "screen", "test_fraction": 0.5},
          "params": dict(n_genes=40, n_control_cells=40, cells_per_perturbation=15, p_effect=0.3,
                         effect_size=2.0, systematic_strength=0.0)}
    out = sp.calibrate.power_check("mse", sc, 4, predictors=("technical_duplicate", "control"), n_sim=3,
                                   n_train=4, rng=0)
    assert out["n_sim"] == 3
    assert out["power"] == 1.0 and out["se"] == 0.0
    weak = sp.calibrate.power_check("mse", sc, 3, predictors=("mean", "control"), n_sim=4, n_train=4,
                                    alpha=1e-12, rng=0)
    assert weak["n_sim"] == 4 and weak["power"] == 0.0 and weak["se"] == 0.0


def test_timings_are_durations_within_the_run():
    # each replicate's wall and CPU seconds are non-negative and at most the whole run's
    import time

    sc = {"scenario": {"name": "t", "kind": "screen", "test_fraction": 0.5},
          "params": dict(n_genes=30, n_perturbations=6, n_control_cells=20, cells_per_perturbation=6)}
    t0 = time.perf_counter()
    cal = sp.calibrate.calibrate(["mse"], [sc], n_replicates=2, rng=0, executor="serial")
    elapsed = time.perf_counter() - t0
    tm = cal.timings
    assert list(tm["replicate"]) == [0, 1] and set(tm["scenario"]) == {"t"}
    assert (tm["wall_s"] >= 0).all() and (tm["wall_s"] <= elapsed).all()
    assert (tm["cpu_s"] >= 0).all()
    assert 0 <= cal.wall_time <= elapsed


def test_power_check_takes_a_single_screen_and_refuses_none():
    sc = {"scenario": {"name": "t1", "kind": "screen", "test_fraction": 0.5},
          "params": dict(n_genes=30, n_control_cells=20, cells_per_perturbation=6)}
    out = sp.calibrate.power_check("mse", sc, 3, n_sim=1, n_train=3, rng=0)
    assert out["n_sim"] == 1 and out["power"] in (0.0, 1.0)
    with pytest.raises(ValueError, match="n_sim"):
        sp.calibrate.power_check("mse", sc, 3, n_sim=0, n_train=3)


def test_constant_differences_need_two_pairs_by_every_route():
    # every pilot difference 0.5: sigma 0, so every resampled t-test rejects (its p-value is
    # 0 for a non-zero mean without spread) and the noncentral t has power 1 at n = 2
    row = sp.calibrate.sample_sizes(_differences(np.full(12, 0.5)), n_resamples=200).iloc[0]
    assert row["sigma"] == 0.0
    assert row["n_required"] == 2 and row["n_t"] == 2 and row["n_normal"] == 2
