"""estimate_params recovers the parameters of a simulated screen."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import simpert.sim as sim

DESIGN = dict(n_genes=1500, n_perturbations=40, n_control_cells=2000, cells_per_perturbation=80,
              dispersion_a0=0.1, dispersion_a1=0.2, library_sd=0.2, p_effect=0.05)


@pytest.fixture(scope="module", params=[0.0, 1.0])
def fitted(request):
    a = sim.screen(rng=10 + int(request.param), systematic_strength=request.param, **DESIGN)
    return request.param, a, sim.fit_screen(a)


def test_dispersion_trend_within_10_percent(fitted):
    _, _, fit = fitted
    a0, a1 = fit.dispersion_trend
    assert abs(a0 / 0.1 - 1) < 0.10, a0
    assert abs(a1 / 0.2 - 1) < 0.10, a1


def test_library_size_law_within_5_percent(fitted):
    _, a, fit = fitted
    assert abs(fit.library_sd / 0.2 - 1) < 0.05, fit.library_sd
    # mean log total counts of controls: library_loc + log(sum of base means)
    true_mean = 0.0 + np.log(a.var.base_mean.sum())
    assert abs(fit.library_log_mean / true_mean - 1) < 0.05
    assert fit.params.library_sd == pytest.approx(fit.library_sd)


def test_shared_shift_within_0_1(fitted):
    B, a, fit = fitted
    assert abs(fit.systematic_strength - B) < 0.1, fit.systematic_strength
    if B > 0:
        t = sim.truth(a)
        ok = a.var.base_mean.to_numpy() > 2
        r = np.corrcoef(fit.shared_log2fc.to_numpy()[ok], t.shared.to_numpy()[ok])[0, 1]
        assert r > 0.9


def test_other_fitted_quantities(fitted):
    _, a, fit = fitted
    p = fit.params
    assert p.n_genes == 1500 and p.n_perturbations == 40 and p.n_control_cells == 2000
    n_cells = a.obs[~a.obs.is_control].groupby("perturbation", observed=True).size()
    assert p.cells_per_perturbation == pytest.approx(n_cells.mean())
    # base means: the fitted vector tracks the truth; the gamma law is close to (0.5, 2)
    mu = a.var.base_mean.to_numpy()
    ok = mu > 1
    assert np.median(np.abs(fit.gene_means.to_numpy()[ok] / mu[ok] - 1)) < 0.05
    assert abs(p.mean_shape * p.mean_scale - mu.mean()) < 0.1 * mu.mean()
    # effect sparsity is estimated from tests with limited power: a lower bound
    assert 0.01 < fit.p_effect <= 0.05 + 0.01
    text = str(fit.summary())
    assert "dispersion_a0" in text and "systematic_strength" in text
    with pytest.raises(dataclasses.FrozenInstanceError):  # a fit is a result: read-only
        fit.p_effect = 0.5
    # the estimate simulates directly
    b = sim.screen(p.replace(n_control_cells=200, n_perturbations=5), rng=0)
    assert b.n_vars == 1500


def test_bad_input():
    a = sim.screen(rng=0, n_genes=50, n_perturbations=2, n_control_cells=2, cells_per_perturbation=5)
    with pytest.raises(ValueError, match="parameter 'adata' must be an AnnData with at least 3 control cells"):
        sim.fit_screen(a)
    with pytest.raises(ValueError, match="parameter 'systematic_sd'"):
        sim.fit_screen(a, systematic_sd=0.0)


def test_two_expressed_genes_fall_back_to_an_exponential_law_of_means():
    """With two or fewer expressed genes no gamma law can be fitted: shape 1 (exponential)
    with the mean of the expressed genes' means as its scale."""
    a = sim.screen(rng=2, n_genes=4, n_perturbations=1, n_control_cells=50, cells_per_perturbation=20,
                   gene_means=(50.0, 1e-12, 30.0, 1e-12), p_effect=0.0)
    fit = sim.fit_screen(a)
    m = fit.gene_means.to_numpy()
    assert (m > 0).sum() == 2
    assert fit.params.mean_shape == 1.0
    assert fit.params.mean_scale == pytest.approx(m[m > 0].mean(), rel=1e-12)


def test_dispersion_trend_uses_genes_with_400_control_counts_and_recovers_an_exact_trend():
    """The trend v - m/s = a1 m + a0 m^2 is fitted on genes with at least 400 counts over the
    n control cells (m n >= 400); on noise-free moments of those genes it is recovered exactly,
    whatever the (here wildly wrong) variances of shallower genes; with fewer than ten such
    genes every expressed gene is used."""
    from simpert.sim._estimate import _dispersion_trend

    n, inv_s, a0, a1 = 200, 1.3, 0.15, 0.4
    m = np.concatenate([np.geomspace(2.0, 60.0, 15), np.geomspace(0.01, 1.99, 12)])  # 15 genes >= 400 counts
    v = m * inv_s + a1 * m + a0 * m ** 2
    v[15:] *= 50.0
    got0, got1, used = _dispersion_trend(m, v, inv_s, n)
    assert used == 15
    assert (got0, got1) == pytest.approx((a0, a1), rel=1e-8)
    # nine deep genes: too few, every expressed gene enters (and the shallow ones pull the fit)
    keep = np.r_[0:9, 15:27]
    got0, got1, used = _dispersion_trend(m[keep], v[keep], inv_s, n)
    assert used == 21
    assert abs(got1 - a1) > 0.05 or abs(got0 - a0) > 0.05
