"""Calibration statistics against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from simpert.calibrate._stats import (
    auroc, drf, ladder_alpha, ladder_tau, null_level, oriented_gain, relative_level, replicate_statistics,
    undefined_reason,
)


def test_drf_higher_is_better_hand_example():
    # (pos - neg) / (best - neg): (0.8 - 0.5) / (1 - 0.5) = 0.6 ; (0.2 - 0.6)/(0.4) = -1 ; 0.5/0.5 = 1
    pos = np.array([0.8, 0.2, 1.0])
    neg = np.array([0.5, 0.6, 0.5])
    per = [(p - n) / (1 - n) for p, n in zip(pos, neg)]
    assert drf(pos, neg, 1.0) == pytest.approx(float(np.median(np.clip(per, -1, 1))))
    assert drf(pos, neg, 1.0) == pytest.approx(0.6)


def test_drf_error_form_matches_miller():
    rng = np.random.default_rng(1)
    pos = rng.gamma(2.0, size=51)
    neg = rng.gamma(3.0, size=51)
    miller = np.median(np.clip((neg - pos) / neg, -1, 1))  # Miller et al.'s error form
    assert drf(pos, neg, 0.0) == pytest.approx(miller)


def test_drf_undefined_best_and_nan():
    assert np.isnan(drf([1.0], [0.0], None))
    assert drf([np.nan, 0.8, 0.9], [0.5, 0.5, 0.5], 1.0) == pytest.approx(np.median([0.6, 0.8]))


def test_ladder_tau_matches_scipy_per_perturbation():
    rng = np.random.default_rng(2)
    alphas = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    scores = rng.normal(size=(5, 40))
    scores[:, 3] = [1, 1, 2, 2, 3]  # ties
    expected = np.mean([stats.kendalltau(alphas, scores[:, p]).statistic for p in range(40)])
    assert ladder_tau(alphas, scores) == pytest.approx(expected, abs=1e-12)


def test_ladder_tau_monotone_and_constant():
    alphas = [0, 0.5, 1]
    assert ladder_tau(alphas, np.array([[0.0], [1.0], [2.0]])) == 1.0
    assert ladder_tau(alphas, np.array([[2.0], [1.0], [0.0]])) == -1.0
    assert np.isnan(ladder_tau(alphas, np.ones((3, 4))))


def test_auroc_matches_sklearn_with_ties():
    rng = np.random.default_rng(3)
    pos = np.round(rng.normal(0.5, 1, 30), 1)
    neg = np.round(rng.normal(0.0, 1, 25), 1)
    y = np.r_[np.ones(30), np.zeros(25)]
    assert auroc(pos, neg) == pytest.approx(roc_auc_score(y, np.r_[pos, neg]))


def test_relative_level_orientation():
    assert relative_level([0.5, 0.5], [1.0, 1.0], True) == pytest.approx(0.5)
    assert relative_level([4.0, 4.0], [1.0, 1.0], False) == pytest.approx(0.25)
    assert np.isnan(relative_level([1.0], [0.0], True))
    assert oriented_gain([3.0, 3.0], [1.0, 2.0], False) == pytest.approx(-1.5)


def test_ladder_alpha_parsing():
    assert ladder_alpha("ladder(0.25)") == 0.25
    assert ladder_alpha("ladder(1)") == 1.0
    assert ladder_alpha("mean") is None


def test_replicate_statistics_negative_distance_to_oracle():
    # score = -|prediction - truth|; ladder rung alpha sits at (1 - alpha) * gap from the truth
    gap = np.array([1.0, 2.0, 0.5])
    rows = {f"ladder({a:g})": -(1 - a) * gap for a in (0, 0.25, 0.5, 0.75, 1)}
    rows.update(oracle=0 * gap, technical_duplicate=-0.1 * gap, mean=-gap, control=-2 * gap,
                shuffled=-1.5 * gap, systematic_only=-2 * gap, target_only=-1.9 * gap)
    wide = pd.DataFrame(rows, index=["p1", "p2", "p3"]).T
    st = replicate_statistics(wide, higher_is_better=True, best=0.0)
    assert st["tau"] == 1.0
    assert st["drf_mean"] == pytest.approx(0.9)      # (-0.1g + g) / (0 + g)
    assert st["drf_control"] == pytest.approx(0.95)  # (-0.1g + 2g) / 2g
    assert st["auroc"] == pytest.approx(np.mean((-0.1 * gap)[:, None] > -gap[None, :]))
    assert st["specificity"] == pytest.approx(1.5 * 1.0)  # median of 1.5 * gap
    assert st["target_gain"] == pytest.approx(0.1)
    # missing predictors give NaN, not an error
    st2 = replicate_statistics(wide.drop(index=["shuffled"]), higher_is_better=True, best=0.0)
    assert np.isnan(st2["specificity"])


def test_null_level_is_a_skill_score_against_the_duplicate():
    rng = np.random.default_rng(4)
    mean = rng.normal(0.6, 0.05, 31)
    dup = rng.normal(0.0, 0.05, 31)
    m, d = np.median(mean), np.median(dup)
    assert null_level(mean, dup, 1.0, True) == pytest.approx((m - d) / (1.0 - d))
    # unknown best: the oracle's median is the ceiling
    oracle = rng.normal(0.7, 0.05, 31)
    assert null_level(mean, dup, None, True, oracle=oracle) == pytest.approx((m - d) / (np.median(oracle) - d))
    # no room above the duplicate, missing inputs: NaN; far below: clipped to -1
    assert np.isnan(null_level(mean, [1.0] * 31, 1.0, True))
    assert np.isnan(null_level([np.nan] * 31, dup, 1.0, True))
    assert null_level([-5.0], [0.0], 1.0, True) == -1.0


def test_null_level_same_for_an_error_and_its_negation():
    # an error e and the similarity -e must get the same null level (best 0 for both)
    rng = np.random.default_rng(5)
    e_mean, e_dup = rng.gamma(5.0, 0.01, 40), rng.gamma(9.0, 0.01, 40)
    as_error = null_level(e_mean, e_dup, 0.0, False)
    as_score = null_level(-e_mean, -e_dup, 0.0, True)
    assert as_error == pytest.approx(as_score)
    assert as_error == pytest.approx(1 - np.median(e_mean) / np.median(e_dup))
    # the old ratio to the oracle is ~1 whenever the mean baseline is nearly the truth
    e_oracle = e_mean * 0.98
    assert relative_level(e_mean, e_oracle, False) > 0.95
    assert as_error < 0.5


def test_squared_error_null_level_closed_form():
    # noise only, squared error per gene against an observation y = truth + noise (var 1):
    # a replicate's error has mean 2, the mean baseline (n pooled draws) 1 + 1/n, so the
    # null level tends to 1 - (1 + 1/n) / 2: at most 1/2 for any squared error
    rng = np.random.default_rng(6)
    G, P, n = 4000, 25, 12
    y = rng.normal(size=(P, G))
    dup = rng.normal(size=(P, G))
    mean = rng.normal(size=(n, G)).mean(axis=0)
    e_dup = ((dup - y) ** 2).mean(axis=1)
    e_mean = ((mean - y) ** 2).mean(axis=1)
    got = null_level(e_mean, e_dup, 0.0, False)
    assert got == pytest.approx(1 - (1 + 1 / n) / 2, abs=0.02)


def test_undefined_reasons():
    wide = pd.DataFrame({"p1": [0.5, np.nan, 0.2], "p2": [0.6, np.nan, 0.1]},
                        index=["technical_duplicate", "mean", "ladder(0)"])
    assert "mean baseline is NaN" in undefined_reason(wide, "null_level", best=1.0)
    assert "same profile" in undefined_reason(wide, "auroc", best=1.0)
    assert undefined_reason(wide, "specificity", best=1.0) == "predictor 'oracle' is not in the run"
    assert undefined_reason(wide, "tau", best=1.0) == "fewer than two ladder rungs in the run"
    ok = wide.fillna(0.1)
    assert undefined_reason(ok, "drf_mean", best=None) == "the metric states no best value"
