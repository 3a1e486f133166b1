"""Every closed form of simpert.theory against Monte Carlo: |z| <= 3 in 12+ settings each.

Seeds are fixed, so the tests are deterministic; each setting has its own seed. The power
checks at the end show that the same machinery rejects wrong formulas.
"""

from __future__ import annotations

import numpy as np
import pytest

from simpert import theory as th

Z_MAX = 3.0


def _check(name, params, n_replicates, seed):
    res = th.validate(name, params, n_replicates=n_replicates, rng=seed)
    assert res.passed(Z_MAX), str(res.summary())
    return res


# ----------------------------------------------------------------- correlations

RHO_SETTINGS = [
    dict(n=50, n_controls=1, m=1),
    dict(n=10, n_controls=1, m=1),
    dict(n=200, n_controls=1, m=1),
    dict(n=20, n_controls=2, m=3),
    dict(n=30, n_controls=5, m=1),
    dict(n=12, n_controls=3, m=2, controls_in_train=False),
    dict(n=40, n_controls=1, m=4, controls_in_train=False),
    dict(n=6, n_controls=2, m=1),
    dict(n=100, n_controls=10, m=2),
    dict(n=25, n_controls=1, m=1, noise_var=4.0),
    dict(n=8, n_controls=4, m=8, controls_in_train=False),
    dict(n=50, n_controls=1, m=1, noise="nb", nb_mean=10.0, nb_dispersion=0.1),
    dict(n=15, n_controls=3, m=2, noise="nb", nb_mean=5.0, nb_dispersion=0.5),
]


@pytest.mark.parametrize("i,params", list(enumerate(RHO_SETTINGS)))
def test_noise_only_rho_vs_monte_carlo(i, params):
    res = _check("noise_only_rho", {**params, "block_genes": 500, "n_test": 2}, 80, 100 + i)
    assert res.source == "simpert.sim.noise_only"


CORR_SETTINGS = [
    dict(n=50, n_controls=1, m=1, n_genes=100),
    dict(n=50, n_controls=1, m=1, n_genes=100, method="spearman"),
    dict(n=50, n_controls=1, m=1, n_genes=5),
    dict(n=50, n_controls=1, m=1, n_genes=5, method="spearman"),
    dict(n=10, n_controls=2, m=1, n_genes=10),
    dict(n=10, n_controls=2, m=1, n_genes=10, method="spearman"),
    dict(n=20, n_controls=1, m=3, n_genes=20, controls_in_train=False),
    dict(n=20, n_controls=1, m=3, n_genes=20, method="spearman", controls_in_train=False),
    dict(n=8, n_controls=4, m=2, n_genes=3),
    dict(n=8, n_controls=4, m=2, n_genes=3, method="spearman"),
    dict(n=100, n_controls=5, m=1, n_genes=50),
    dict(n=30, n_controls=1, m=2, n_genes=8, method="spearman"),
    dict(n=30, n_controls=2, m=1, method="spearman", block_genes=1000),
]


@pytest.mark.parametrize("i,params", list(enumerate(CORR_SETTINGS)))
def test_noise_only_correlation_vs_monte_carlo(i, params):
    n_rep = 60 if params.get("n_genes") is None else 1500
    res = _check("noise_only_correlation", params, n_rep, 200 + i)
    assert res.source == "simpert.sim.noise_only"


EFFECT_SETTINGS = [
    # independent effects of SD 1 per perturbation (simpert.sim.noise_only's law)
    dict(n=50, n_controls=1, m=1, n_genes=20, var_train=1 / 49, var_test=1.0),
    dict(n=11, n_controls=1, m=2, n_genes=30, var_train=0.25 / 10, var_test=0.25),
    dict(n=10, n_controls=3, m=1, n_genes=15, var_train=4.0 / 10, var_test=4.0, controls_in_train=False),
    dict(n=21, n_controls=1, m=1, n_genes=10, var_train=0.5 / 20, var_test=0.5, method="spearman"),
    # correlated effects (a shared response): numpy draws
    dict(n=50, n_controls=1, m=1, n_genes=20, var_train=0.5, var_test=1.0, cov=0.4),
    dict(n=50, n_controls=1, m=1, n_genes=20, var_train=0.5, var_test=1.0, cov=0.4, method="spearman"),
    dict(n=10, n_controls=2, m=3, n_genes=40, var_train=0.2, var_test=0.3, cov=-0.2),
    dict(n=30, n_controls=1, m=1, n_genes=8, var_train=1.0, var_test=1.0, cov=0.9, noise_var=2.0),
    dict(n=12, n_controls=4, m=2, n_genes=25, var_train=0.0, var_test=2.0, cov=0.0, noise_var=0.5),
    dict(n=60, n_controls=3, m=1, n_genes=12, var_train=0.3, var_test=0.1, cov=0.15,
         controls_in_train=False),
    dict(n=20, n_controls=1, m=4, n_genes=50, var_train=2.0, var_test=2.0, cov=1.9, method="spearman"),
    dict(n=40, n_controls=2, m=1, var_train=0.1, var_test=0.5, cov=0.2, block_genes=1000),
]


@pytest.mark.parametrize("i,params", list(enumerate(EFFECT_SETTINGS)))
def test_effects_correlation_vs_monte_carlo(i, params):
    n_rep = 60 if params.get("n_genes") is None else 1500
    res = _check("effects_correlation", params, n_rep, 300 + i)
    want = "simpert.sim.noise_only" if i < 4 else "numpy"
    assert res.source == want


# ----------------------------------------------------------------- bias-variance

_G = np.linspace(-1.0, 1.0, 20)
_RNG = np.random.default_rng(7)
_D = _RNG.normal(size=30)
_DBAR = _RNG.normal(scale=0.5, size=30)
_S2 = _RNG.uniform(0.5, 2.0, size=30)

BV_SETTINGS = [
    dict(d_test=_G, d_train_mean=0.3),
    dict(d_test=_G, d_train_mean=0.3, controls_in_train=False),
    dict(d_test=0.0 * _G, d_train_mean=0.0),
    dict(d_test=_D, d_train_mean=_DBAR, noise_var=_S2),
    dict(d_test=_D, d_train_mean=_DBAR, noise_var=_S2, n_controls=3, n_perturbed=10, m=2),
    dict(d_test=_D, d_train_mean=_DBAR, noise_var=_S2, n_controls=3, n_perturbed=10, m=2, controls_in_train=False),
    dict(d_test=_G, d_train_mean=1.5, n_controls=5, n_perturbed=5, m=1),
    dict(d_test=2 * _G, d_train_mean=-0.8, noise_var=0.25, n_controls=1, n_perturbed=99, m=3),
    dict(d_test=_D, d_train_mean=0.1, n_controls=10, n_perturbed=3, m=5),
    dict(d_test=_D, d_train_mean=_DBAR, noise_var=3.0, n_controls=2, n_perturbed=2, m=1, controls_in_train=False),
    dict(d_test=_G, d_train_mean=_G[::-1], n_controls=4, n_perturbed=40, m=4),
    dict(d_test=_D, d_train_mean=_DBAR, noise_var=_S2, n_controls=1, n_perturbed=7, m=1),
]


@pytest.mark.parametrize("i,params", list(enumerate(BV_SETTINGS)))
def test_baseline_mse_vs_monte_carlo(i, params):
    _check("baseline_mse", params, 3000, 400 + i)


@pytest.mark.parametrize("i,params", list(enumerate(BV_SETTINGS)))
def test_effect_estimator_mse_vs_monte_carlo(i, params):
    params = {k: v for k, v in params.items() if k != "controls_in_train"}
    _check("effect_estimator_mse", params, 3000, 500 + i)


TOPK_SETTINGS = [
    dict(d_test=np.zeros(100), k=10),
    dict(d_test=np.zeros(100), k=10, controls_in_train=False),
    dict(d_test=np.zeros(50), k=1),
    dict(d_test=np.zeros(50), k=25, n_controls=3, n_perturbed=20, m=2),
    dict(d_test=_G, d_train_mean=0.3, k=5),
    dict(d_test=_G, d_train_mean=0.3, k=5, controls_in_train=False),
    dict(d_test=_D, d_train_mean=_DBAR, noise_var=_S2, k=8),
    dict(d_test=_D, d_train_mean=_DBAR, noise_var=_S2, k=3, n_controls=2, n_perturbed=10, m=3),
    dict(d_test=np.r_[np.zeros(60), np.full(20, 2.0)], d_train_mean=0.5, k=20),
    dict(d_test=np.r_[np.zeros(60), np.full(20, 2.0)], d_train_mean=0.5, k=20, n_controls=5, m=5),
    dict(d_test=_D, d_train_mean=0.0, noise_var=0.3, k=15, n_controls=1, n_perturbed=3, m=1),
    dict(d_test=_G, d_train_mean=-1.0, k=19, n_controls=4, n_perturbed=4, m=2, controls_in_train=False),
]


@pytest.mark.parametrize("i,params", list(enumerate(TOPK_SETTINGS)))
def test_topk_mse_vs_monte_carlo(i, params):
    _check("topk_mse", params, 3000, 600 + i)


def _basis(g, k, seed):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(g, k)))[0]


EMB_SETTINGS = [
    dict(bias=_D, basis=_basis(30, 5, 1)),
    dict(bias=_D, basis=_basis(30, 5, 1), n_est=10, m=3),
    dict(bias=np.zeros(30), basis=_basis(30, 2, 2), noise_var=_S2),
    dict(bias=_D, basis=_basis(30, 1, 3)[:, 0]),
    dict(bias=_D, basis=np.eye(30)),
    dict(bias=_DBAR, basis=_basis(30, 10, 4), noise_var=_S2, n_est=50, m=1),
    dict(bias=_D, basis=_basis(30, 20, 5), noise_var=0.1, n_est=2, m=2),
    dict(bias=_G, basis=np.random.default_rng(6).normal(size=(20, 4)), n_est=3),  # not orthonormal
    dict(bias=_G, basis=_basis(20, 3, 7), noise_var=np.linspace(0.1, 3, 20), m=4),
    dict(bias=5 * _G, basis=_basis(20, 2, 8), n_est=100, m=100),
    dict(bias=_D, basis=_basis(30, 29, 9), noise_var=2.0, n_est=1, m=1),
    dict(bias=_D, basis=_D[:, None] / np.linalg.norm(_D), noise_var=1.0, n_est=5, m=1),
]


@pytest.mark.parametrize("i,params", list(enumerate(EMB_SETTINGS)))
def test_embedding_error_vs_monte_carlo(i, params):
    _check("embedding_error", params, 3000, 700 + i)


# ----------------------------------------------------------------- power


def test_population_rho_is_rejected_at_small_gene_counts():
    """The exact E[r] is needed: with 5 genes the population rho misses by many SEs."""
    res = th.validate("noise_only_correlation", dict(n=50, n_genes=5), n_replicates=1500, rng=11)
    assert res.passed()
    z_pop = (res.mc_mean[0] - th.noise_only_rho(50)) / res.mc_se[0]
    assert z_pop < -5


def test_blog_bias_sign_is_rejected():
    """The centroid estimator's bias is -Dbar, not (1/N) sum D_J - D_G (= +Dbar for D_G = 0)."""
    res = th.validate("effect_estimator_mse", dict(d_test=0.0, d_train_mean=np.full(20, 0.4)),
                      n_replicates=2000, rng=12)
    assert res.passed()
    i = res.labels.index("centroid_bias")
    assert res.closed_form[i] == pytest.approx(-0.4)
    z_blog = (res.mc_mean[i] - 0.4) / res.mc_se[i]
    assert z_blog < -20


def test_topk_without_selection_coupling_is_rejected():
    """Ignoring that |obs LFC| selection shares the control noise (using the all-gene MSE
    per gene) is far off."""
    params = dict(d_test=np.zeros(100), k=10)
    res = th.validate("topk_mse", params, n_replicates=2000, rng=13)
    full = th.baseline_mse(np.zeros(100))
    naive = full.control_total / 100 * 10
    i = res.labels.index("control")
    assert (res.mc_mean[i] - naive) / res.mc_se[i] > 20


def test_validate_is_reproducible_and_summary_prints():
    a = th.validate("baseline_mse", dict(d_test=_G), n_replicates=200, rng=5)
    b = th.validate("baseline_mse", dict(d_test=_G), n_replicates=200, rng=5)
    np.testing.assert_array_equal(a.mc_mean, b.mc_mean)
    text = str(a.summary())
    assert "closed form" in text and "MC SE" in text and "numpy" in text
