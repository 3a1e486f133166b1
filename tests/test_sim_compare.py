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


def _reference_panels(X, label, n_top):
    """splatter's compareSCEs statistics by a plain dense route (pandas and scipy)."""
    X = np.asarray(X, dtype=float)
    n, G = X.shape
    lib = X.sum(axis=1)
    cpm = X / np.where(lib > 0, lib, 1.0)[:, None] * 1e6
    L = np.log2(cpm + 1.0)
    frame = pd.DataFrame(L)
    m = frame.mean(axis=0).to_numpy()
    v = frame.var(axis=0, ddof=1).to_numpy()
    pct_gene = 100.0 * (X == 0).mean(axis=0)
    pct_cell = 100.0 * (X == 0).mean(axis=1)
    order = sorted(range(G), key=lambda j: (-v[j], j))[:n_top]
    top = [j for j in order if v[j] > 1e-12]
    C = pd.DataFrame(L[:, top]).corr().to_numpy()
    ev = np.sort(np.linalg.eigvals(C).real)[::-1]
    off = np.abs(C[np.triu_indices(len(top), 1)])
    pos = m > 0
    coef = np.polyfit(m[pos], v[pos], 2)
    return {
        ("library_size", "median"): np.median(lib),
        ("library_size", "mean"): lib.mean(),
        ("library_size", "cv"): pd.Series(lib).std() / lib.mean(),
        ("mean_variance", "median_mean_log_cpm"): np.median(m),
        ("mean_variance", "median_var_log_cpm"): np.median(v),
        ("mean_variance", "var_at_median_mean"): np.polyval(coef, np.median(m[pos])),
        ("zeros_per_gene", "mean_pct_zero"): pct_gene.mean(),
        ("zeros_per_gene", "spearman_with_mean"): pd.Series(X.mean(axis=0)).corr(pd.Series(pct_gene), method="spearman"),
        ("zeros_per_cell", "mean_pct_zero"): pct_cell.mean(),
        ("zeros_per_cell", "spearman_with_library"): pd.Series(lib).corr(pd.Series(pct_cell), method="spearman"),
        ("correlation_spectrum", "top_eigenvalue"): ev[0],
        ("correlation_spectrum", "top_eigenvalue_fraction"): ev[0] / ev.sum(),
        ("correlation_spectrum", "mean_abs_correlation"): off.mean(),
        ("correlation_spectrum", "n_genes"): float(len(top)),
    }, m, v, pct_gene, pct_cell, ev


def test_every_panel_statistic_matches_a_plain_dense_computation():
    """Each statistic of the table, the per-gene and per-cell frames and the spectrum, on two
    small irregular datasets (a gene of zeros, a constant gene, uneven libraries, other gene
    names), against pandas/numpy computed densely: the splatter definitions in the module
    docstring (sample variance; Spearman via pandas' ranks; eigenvalues of the top genes'
    correlation matrix, genes without variance dropped)."""
    g = np.random.default_rng(5)
    mats = []
    for n, G, seed_scale in ((23, 9, 1.0), (31, 12, 3.0)):
        lam = np.exp(g.normal(0.0, 1.0, (n, 1))) * np.exp(g.normal(0.5, 1.2, (1, G))) * seed_scale
        X = g.poisson(lam).astype(float)
        X[:, 0] = 0.0  # a gene never seen
        X[:, 1] = 2.0  # a constant gene: a log-CPM variance only through the library sizes
        X[3] = 0.0  # an empty cell
        mats.append(X)
    a = ad.AnnData(X=sparse.csr_matrix(mats[0]), var=pd.DataFrame(index=[f"s{j}" for j in range(9)]))
    b = ad.AnnData(X=mats[1], var=pd.DataFrame(index=[f"r{j}" for j in range(12)]))
    n_top = 7
    cmp = sim.compare(a, b, labels=("sim", "obs"), n_top_genes=n_top)
    assert cmp.datasets == ("sim", "obs")
    for X, label, names in ((mats[0], "sim", a.var_names), (mats[1], "obs", b.var_names)):
        ref, m, v, pct_gene, pct_cell, ev = _reference_panels(X, label, n_top)
        for (panel, stat), want in ref.items():
            got = _value(cmp, panel, stat, label)
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (label, panel, stat, got, want)
        genes = cmp.genes[cmp.genes["dataset"] == label]
        assert list(genes["gene"]) == list(names)
        np.testing.assert_allclose(genes["mean_log_cpm"], m, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(genes["var_log_cpm"], v, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(genes["mean_count"], X.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(genes["pct_zero"], pct_gene, rtol=1e-12)
        cells = cmp.cells[cmp.cells["dataset"] == label]
        np.testing.assert_allclose(cells["library_size"], X.sum(axis=1), rtol=1e-12)
        np.testing.assert_allclose(cells["pct_zero"], pct_cell, rtol=1e-12)
        spec = cmp.spectrum[cmp.spectrum["dataset"] == label]
        assert list(spec["rank"]) == list(range(1, ev.size + 1))
        np.testing.assert_allclose(spec["eigenvalue"], ev, rtol=1e-9, atol=1e-12)
    # the summary: panels in the table's order, one column per dataset, then the ratio
    summ = cmp.summary().table
    assert list(summ.columns) == ["panel", "statistic", "sim", "obs", "ratio"]
    firsts = cmp.table[cmp.table["dataset"] == "sim"]
    assert list(zip(summ["panel"], summ["statistic"])) == list(zip(firsts["panel"], firsts["statistic"]))
    np.testing.assert_allclose(summ["ratio"], summ["sim"] / summ["obs"], rtol=1e-12)


def test_two_genes_and_two_cells_are_enough_and_fewer_are_named():
    """The smallest comparable data: two cells and two genes (one correlation)."""
    X = np.array([[1.0, 4.0], [3.0, 0.0], [2.0, 2.0]])
    a = ad.AnnData(X=X)
    cmp = sim.compare(a, ad.AnnData(X=X[:2]), n_top_genes=2)
    assert _value(cmp, "correlation_spectrum", "n_genes", "simulated") == 2.0
    # two genes: eigenvalues 1 +- |r|, r of the log-CPM columns
    L = np.log2(X / X.sum(axis=1, keepdims=True) * 1e6 + 1)
    r = abs(np.corrcoef(L[:, 0], L[:, 1])[0, 1])
    assert _value(cmp, "correlation_spectrum", "top_eigenvalue", "simulated") == pytest.approx(1 + r)
    for bad in (X[:, :1], X[:1]):
        with pytest.raises(ValueError, match="at least two cells and two genes"):
            sim.compare(ad.AnnData(X=bad), a)


def test_library_sizes_differing_by_one_count_have_a_spearman_correlation():
    """Library sizes 5, 5, 6, 6 (a range of one count): the zeros-per-cell Spearman statistic
    is defined (pandas' rank correlation); equal library sizes leave it undefined."""
    X = np.array([[5, 0, 0], [2, 3, 0], [1, 2, 3], [3, 3, 0]], dtype=float)
    cmp = sim.compare(ad.AnnData(X=X), ad.AnnData(X=X[[0, 1]]), n_top_genes=3)
    pct = 100.0 * (X == 0).mean(axis=1)
    want = pd.Series(X.sum(axis=1)).corr(pd.Series(pct), method="spearman")
    assert _value(cmp, "zeros_per_cell", "spearman_with_library", "simulated") == pytest.approx(want)
    assert np.isnan(_value(cmp, "zeros_per_cell", "spearman_with_library", "real"))
