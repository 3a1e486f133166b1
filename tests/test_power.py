"""calibrate.power: closed form against Monte Carlo, and predicted sample sizes against simulation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st

from simpert.calibrate import power, power_check, t_test_power

SCENARIO = {"scenario": {"name": "small", "kind": "screen"},
            "params": {"n_genes": 300, "n_control_cells": 100, "cells_per_perturbation": 30, "p_effect": 0.1}}


@pytest.mark.parametrize("n,delta,sigma", [(5, 1.0, 1.0), (12, 0.5, 1.0), (30, 0.3, 1.2)])
def test_noncentral_t_power_matches_monte_carlo(n, delta, sigma):
    g = np.random.default_rng(n)
    d = g.normal(delta, sigma, size=(20000, n))
    p = st.ttest_1samp(d, 0.0, axis=1).pvalue
    mc = float(np.mean(p < 0.05))
    se = np.sqrt(mc * (1 - mc) / d.shape[0])
    assert abs(t_test_power(n, delta, sigma) - mc) < 3 * se + 1e-3


def test_power_increases_with_n_and_is_alpha_at_zero():
    assert t_test_power(10, 0.0, 1.0) == pytest.approx(0.05, abs=1e-9)
    vals = [t_test_power(n, 0.4, 1.0) for n in (5, 10, 20, 40)]
    assert all(a < b for a, b in zip(vals, vals[1:]))


@pytest.mark.slow
@pytest.mark.parametrize("metric,cells", [("mse", 20), ("pearson_delta", 40)])
def test_predicted_sample_size_gives_eighty_percent_power(metric, cells):
    """The n that power() returns reaches 80% +- 5% power in new simulated screens.

    The duplicate's advantage over the mean baseline varies from screen to screen (each has
    its own control cells and training set), so the power is an average over screens and
    the pilot needs many screens: 40 here."""
    res = power(metric, SCENARIO, predictors=("technical_duplicate", "mean"), cells_per_perturbation=cells,
                n_pilot=40, n_pilot_test=60, n_train=30, rng=0)
    n = int(res.table["n_required"].iloc[0])
    assert 5 <= n <= 200, res.table
    mc = power_check(metric, SCENARIO, n, predictors=("technical_duplicate", "mean"), cells_per_perturbation=cells,
                     n_sim=300, n_train=30, rng=11)
    assert abs(mc["power"] - 0.8) <= 0.05, (n, mc, res.table.to_dict("records"))


def test_summary_and_table():
    res = power("mse", SCENARIO, cells_per_perturbation=[10, 20], n_pilot=2, n_pilot_test=10, n_train=10,
                n_resamples=200, rng=0)
    assert list(res.table["cells_per_perturbation"]) == [10.0, 20.0]
    assert {"delta", "sigma", "n_required", "n_t", "n_normal"} <= set(res.table.columns)
    assert "technical_duplicate" in str(res.summary())


@pytest.mark.parametrize("kwargs,text", [
    (dict(metric=3), "'metric'"),
    (dict(metric="nope"), "nope"),
    (dict(predictors=("mean",)), "'predictors'"),
    (dict(predictors=("mean", "mean")), "'predictors'"),
    (dict(alpha=1.5), "'alpha'"),
    (dict(target=0), "'power'"),
    (dict(n_pilot=0), "'n_pilot'"),
    (dict(cells_per_perturbation=-1), "'cells_per_perturbation'"),
    (dict(scenario={"scenario": {"name": "n", "kind": "noise_only"}, "params": {}}), "'scenario'"),
])
def test_bad_input(kwargs, text):
    args = dict(metric="mse", scenario=SCENARIO)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=text):
        power(args.pop("metric"), args.pop("scenario"), **args)


def test_cli_power(tmp_path):
    from typer.testing import CliRunner

    from simpert.cli import app

    res = CliRunner().invoke(app, ["-q", "power", "-m", "mse", "-s", "sparse_weak", "--set", "n_genes=200",
                                   "--cells", "20", "--n-pilot", "2", "--n-pilot-test", "10", "--n-train", "10",
                                   "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    import pandas as pd

    t = pd.read_csv(tmp_path / "p.csv")
    assert t["cells_per_perturbation"].tolist() == [20.0]
