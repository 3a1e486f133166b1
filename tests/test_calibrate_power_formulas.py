"""Sample sizes of the power analysis against independent computations (the normal
approximation by hand, the t-test power by statsmodels, the resampled power from pilots whose
outcome is known), and the planted scenario's pipeline (stand-in controls, duplicate)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower

import simpert as sp
from simpert.calibrate import Scenario
from simpert.calibrate._pipeline import default_simulate, planted_controls


def _standardised(n, mean, sd, seed):
    """n values with exactly the given mean and SD (ddof 1)."""
    v = np.random.default_rng(seed).normal(size=n)
    return (v - v.mean()) / v.std(ddof=1) * sd + mean


def _differences(pilots):
    rows = []
    for k, d in enumerate(pilots):
        rows.append(pd.DataFrame({"cells_per_perturbation": 10.0, "pair": "a - b", "metric": "m", "pilot": k,
                                  "perturbation": [f"p{i}" for i in range(d.size)], "d": d}))
    return pd.concat(rows, ignore_index=True)


def test_normal_and_t_sample_sizes_by_hand_at_the_default_alpha():
    # kills _power.py `_n_required` mutants (the normal approximation's sigma / |delta|, its z's)
    # and a change of sample_sizes' default alpha (0.05)
    delta, sigma = 0.5, 1.0
    d = _differences([_standardised(40, delta, sigma, s) for s in range(3)])
    t = sp.calibrate.sample_sizes(d, n_resamples=200)
    row = t.iloc[0]
    assert row["delta"] == pytest.approx(delta) and row["sigma"] == pytest.approx(sigma)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert row["n_normal"] == max(2, math.ceil((z * sigma / delta) ** 2))  # 32
    # the smallest n whose two-sided one-sample t-test has power >= 0.8 (statsmodels), by a loop
    power = TTestPower()
    n = 2
    while power.power(effect_size=delta / sigma, nobs=n, alpha=0.05, alternative="two-sided") < 0.8:
        n += 1
    assert row["n_t"] == n
    # and at alpha 0.01 the same route gives a larger n
    t01 = sp.calibrate.sample_sizes(d, alpha=0.01, n_resamples=200).iloc[0]
    n01 = 2
    while power.power(effect_size=delta / sigma, nobs=n01, alpha=0.01, alternative="two-sided") < 0.8:
        n01 += 1
    assert t01["n_t"] == n01 > n


def test_resampled_power_draws_every_pilot_and_is_a_fraction():
    # two pilots: one always significant (differences 1 + tiny noise), one never (all zero: p = 1).
    # A resampled screen picks a pilot at random, so the power is the share of draws of the
    # first, about 1/2 at every n. kills `_resampled_power` mutants of the pilot draw
    # (integers(0, ...)) and of `hits / n_resamples`
    sure = 1.0 + 0.01 * np.random.default_rng(0).normal(size=30)
    never = np.zeros(30)
    d = _differences([sure, never])
    reach = sp.calibrate.sample_sizes(d, target=0.4, n_resamples=2000).iloc[0]
    assert reach["n_required"] == 2  # power about 0.5 >= 0.4 from the smallest screen
    out_of_reach = sp.calibrate.sample_sizes(d, target=0.8, n_resamples=2000).iloc[0]
    assert np.isnan(out_of_reach["n_required"])  # about 0.5 < 0.8 at every n


def test_resampled_sample_size_matches_a_direct_simulation():
    # kills mutants of the bisection for the smallest n reaching the target: the answer must
    # be where a direct simulation (a plain loop over n with scipy's t-test) crosses the target
    pilots = [_standardised(200, 0.3, 1.0, s) for s in (1, 2)]
    d = _differences(pilots)
    got = sp.calibrate.sample_sizes(d, n_resamples=4000).iloc[0]["n_required"]
    rng = np.random.default_rng(5)

    def power(n, reps=4000):
        hits = 0
        for _ in range(reps):
            p = pilots[rng.integers(2)]
            x = p[rng.permutation(p.size)[:n]]
            hits += stats.ttest_1samp(x, 0.0).pvalue < 0.05
        return hits / reps

    # around the answer the direct simulation crosses 0.8 (Monte Carlo SE about 0.006)
    assert power(int(got) + 4) > 0.8 - 0.02
    assert power(int(got) - 4) < 0.8 + 0.02


def test_stand_in_controls_have_no_perturbations():
    # kills the stand-in's `n_perturbations = 0` (_pipeline.planted_controls): only control cells
    ctrl = planted_controls({"controls": "simulated", "stand_in": {"n_genes": 60, "n_control_cells": 80},
                             "stand_in_seed": 3})
    control = str(ctrl.uns["simpert"]["control"])
    assert ctrl.n_obs == 80
    assert set(map(str, ctrl.obs["perturbation"].unique())) == {control}


def test_planted_scenario_draws_carry_their_technical_duplicate():
    # kills `duplicate=True` of _pipeline._simulate_planted: the calibration's technical
    # duplicate predictor needs the duplicate planted with the screen
    sc = Scenario("planted_small", kind="planted",
                  params={"controls": "simulated", "stand_in": {"n_genes": 60, "n_control_cells": 400},
                          "n_perturbations": 3, "cells_per_perturbation": 10})
    adata = default_simulate(sc, rng=np.random.SeedSequence(2))
    assert "duplicate" in adata.layers
    dup = sp.sim.planted_duplicate(adata) if hasattr(sp.sim, "planted_duplicate") else None
    if dup is not None:
        assert dup.shape == adata.shape
