"""sim.compare: panels comparing a simulation to real data (splatter's compareSCEs)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sparse

from simpert import sim
from simpert.sim._compare import PANELS


def _correlated_controls(n=3000, G=80, n_loaded=40, seed=0):
    """Control cells whose first ``n_loaded`` genes share a latent factor (the "real" data)."""
    g = np.random.default_rng(seed)
    mu = np.exp(g.uniform(np.log(1.0), np.log(40.0), G))
    load = np.zeros(G)
    load[:n_loaded] = g.choice([-1.0, 1.0], n_loaded) * 0.6
    f = g.standard_normal(n)
    lib = np.exp(0.3 * g.standard_normal(n))
    lam = lib[:, None] * mu[None, :] * np.exp(np.outer(f, load) - load ** 2 / 2) * g.gamma(5.0, 0.2, (n, G))
    return ad.AnnData(X=sparse.csr_matrix(g.poisson(lam)), obs=pd.DataFrame(index=[f"bc{i}" for i in range(n)]),
                      var=pd.DataFrame(index=[f"gene{j}" for j in range(G)]))


def _value(cmp, panel, statistic, dataset):
    t = cmp.table
    row = t[(t["panel"] == panel) & (t["statistic"] == statistic) & (t["dataset"] == dataset)]
    assert len(row) == 1
    return float(row["value"].iloc[0])


@pytest.fixture(scope="module")
def fitted_screen():
    real = sim.screen(n_genes=300, n_perturbations=10, n_control_cells=600, cells_per_perturbation=60,
                      mean_shape=0.6, mean_scale=4.0, library_sd=0.3, rng=0)
    fitted = sim.screen(sim.estimate_params(real), rng=1)
    return real, fitted


def test_an_estimate_params_fit_matches_its_screen_panel_by_panel(fitted_screen):
    real, fitted = fitted_screen
    cmp = sim.compare(fitted, real)
    t = cmp.table
    assert list(t.columns) == ["panel", "statistic", "dataset", "value"]
    assert set(t["panel"]) == set(PANELS)
    assert set(t["dataset"]) == {"simulated", "real"}
    assert t.groupby(["panel", "statistic"]).size().eq(2).all()  # one row per statistic per dataset
    for panel, stat, rel in [("library_size", "median", 0.15), ("mean_variance", "median_mean_log_cpm", 0.15),
                             ("mean_variance", "median_var_log_cpm", 0.25)]:
        assert _value(cmp, panel, stat, "simulated") == pytest.approx(_value(cmp, panel, stat, "real"), rel=rel)
    for panel in ("zeros_per_gene", "zeros_per_cell"):
        assert abs(_value(cmp, panel, "mean_pct_zero", "simulated") - _value(cmp, panel, "mean_pct_zero", "real")) < 4
    # both are negative binomial screens without gene-gene correlation: flat spectra alike
    for d in ("simulated", "real"):
        assert _value(cmp, "correlation_spectrum", "top_eigenvalue_fraction", d) < 0.1
        assert _value(cmp, "zeros_per_gene", "spearman_with_mean", d) < -0.9
        assert _value(cmp, "zeros_per_cell", "spearman_with_library", d) < -0.3
    summ = cmp.summary()
    assert {"panel", "statistic", "simulated", "real", "ratio"} <= set(summ.table.columns)
    assert "Comparison" in str(summ)


def test_compare_sees_the_correlation_a_fit_misses_and_plant_keeps():
    real = _correlated_controls()
    planted = sim.plant(real, n_perturbations=10, cells_per_perturbation=100, n_control_cells=1000,
                        p_effect=0.05, rng=2)
    fitted = sim.screen(sim.estimate_params(planted), rng=3)
    free = sim.compare(fitted, real)
    kept = sim.compare(planted, real, labels=("planted", "real"))
    top_real = _value(free, "correlation_spectrum", "top_eigenvalue", "real")
    assert top_real > 2.0 * _value(free, "correlation_spectrum", "top_eigenvalue", "simulated")
    assert _value(kept, "correlation_spectrum", "top_eigenvalue", "planted") == pytest.approx(top_real, rel=0.25)
    spec = kept.spectrum
    assert spec.groupby("dataset")["eigenvalue"].sum().round(6).eq(80.0).all()  # trace = genes used (all 80)
    assert (spec.groupby("dataset")["eigenvalue"].apply(lambda e: e.is_monotonic_decreasing)).all()


def test_figure_and_bad_inputs(fitted_screen):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real, fitted = fitted_screen
    cmp = sim.compare(fitted, real, n_top_genes=50)
    fig = cmp.figure()
    assert len(fig.axes) == 6 and fig.axes[4].get_yscale() == "log"
    assert cmp.plot is not None and cmp.plot.__func__ is cmp.figure.__func__
    plt.close(fig)
    assert int(_value(cmp, "correlation_spectrum", "n_genes", "real")) == 50
    with pytest.raises(ValueError, match="'labels'"):
        sim.compare(fitted, real, labels=("a", "a"))
    with pytest.raises(ValueError, match="'n_top_genes'"):
        sim.compare(fitted, real, n_top_genes=1)
    with pytest.raises(TypeError, match="'real'"):
        sim.compare(fitted, real.X)
    with pytest.raises(ValueError, match="'layer'"):
        sim.compare(fitted, real, layer="raw")
    bad = ad.AnnData(X=-np.ones((3, 3)))
    with pytest.raises(ValueError, match="'simulated'.*non-negative"):
        sim.compare(bad, real)
