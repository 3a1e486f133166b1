"""The numeric options of evaluate, compare and score take exactly their documented ranges.

Written from the docstrings (``n_boot`` >= 0, ``ci`` in (0, 1), ``cell_bootstrap`` >= 0,
``n_splits`` >= 1, ``chunk_cells`` >= 1, ``alpha`` in (0, 1), ``target_sum`` > 0): each end that
belongs to the range is accepted, just outside is refused with an error naming the option.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import simpert as sp


@pytest.fixture(scope="module")
def pair():
    real = sp.sim.screen(n_genes=20, n_perturbations=4, n_control_cells=20, cells_per_perturbation=8,
                         p_effect=0.3, effect_size=1.2, rng=2)
    return sp.sim.redraw(real, rng=3), real


def _evaluate(pred, real, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sp.metrics.evaluate(pred, real, metrics=["mse", "pearson_delta"], **kw)


@pytest.mark.parametrize("name,accepted,refused", [
    ("n_boot", [0, 1, 7], [-1]),
    ("ci", [1e-6, 0.5, 1 - 1e-6], [0.0, 1.0, -0.2, 1.2]),
    ("cell_bootstrap", [0, 1], [-1]),
    ("n_splits", [1, 2], [0]),
    ("chunk_cells", [1, 10], [0]),
])
def test_evaluate_options_take_their_ranges(pair, name, accepted, refused):
    pred, real = pair
    base = {"n_boot": 3, "rng": 0}
    for v in accepted:
        res = _evaluate(pred, real, **{**base, name: v})
        assert np.isfinite(res.aggregate["value"]).all(), (name, v)
    for v in refused:
        with pytest.raises(ValueError, match=f"parameter '{name}'"):
            _evaluate(pred, real, **{**base, name: v})


def test_evaluate_n_boot_zero_gives_no_interval_and_one_gives_a_degenerate_one(pair):
    pred, real = pair
    none = _evaluate(pred, real, n_boot=0)
    assert none.aggregate[["ci_low", "ci_high"]].isna().all().all()
    one = _evaluate(pred, real, n_boot=1, rng=0)
    lo, hi = one.aggregate["ci_low"].to_numpy(), one.aggregate["ci_high"].to_numpy()
    assert np.all(np.isfinite(lo)) and np.allclose(lo, hi)


def test_compare_alpha_is_open_at_both_ends(pair):
    pred, real = pair
    other = sp.sim.redraw(real, rng=4)
    for ok in (1e-6, 0.5, 1 - 1e-6):
        sp.metrics.compare(pred, other, real, alpha=ok, metrics=["mse"], n_boot=0)
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="parameter 'alpha'"):
            sp.metrics.compare(pred, other, real, alpha=bad, metrics=["mse"], n_boot=0)


def test_score_target_sum_is_a_positive_number_or_median(pair):
    _, real = pair
    split = sp.predict.split(real, test_fraction=0.5, rng=0)
    preds = sp.predict.make(real, split, ["mean"], rng=0)
    for ok in (1e-3, 1e4, "median"):
        sp.metrics.score(preds, real, split, metrics=["mse"], target_sum=ok)
    for bad in (0, -1.0, "mean", True):
        with pytest.raises(ValueError, match="parameter 'target_sum'"):
            sp.metrics.score(preds, real, split, metrics=["mse"], target_sum=bad)
