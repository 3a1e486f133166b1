"""Closed forms of simpert.theory against independent computations (no Monte Carlo here)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import simpert as sp
from simpert import theory as th


# ----------------------------------------------------------------- correlations


def _rho_by_weights(n, n_controls, m, controls_in_train):
    """rho from the explicit linear weights of each LFC on the independent sample noises."""
    n_p = n - n_controls if controls_in_train else n
    # sample order: controls, perturbed training samples, test replicates
    c = np.full(n_controls, 1.0 / n_controls)
    n_tot = n_controls + n_p + m
    pred = np.zeros(n_tot)
    if controls_in_train:
        pred[: n_controls + n_p] = 1.0 / (n_controls + n_p)
    else:
        pred[n_controls : n_controls + n_p] = 1.0 / n_p
    pred[:n_controls] -= c
    obs = np.zeros(n_tot)
    obs[n_controls + n_p :] = 1.0 / m
    obs[:n_controls] -= c
    return pred @ obs / math.sqrt((pred @ pred) * (obs @ obs))


@pytest.mark.parametrize("n,nc,m,cit", [(50, 1, 1, True), (10, 3, 2, True), (7, 2, 5, False), (200, 10, 1, False),
                                        (3, 2, 1, True), (2, 1, 4, False)])
def test_rho_matches_linear_weights(n, nc, m, cit):
    assert th.noise_only_rho(n, nc, m, controls_in_train=cit) == pytest.approx(_rho_by_weights(n, nc, m, cit), rel=1e-12)


def test_design_example_is_point_seven():
    assert sp.theory.noise_only_correlation(n=50, n_controls=1, m=1) == pytest.approx(math.sqrt(49 / 100), abs=1e-15)
    # the paper's G = 100 genes
    assert th.noise_only_correlation(n=50, n_genes=100) == pytest.approx(0.69818, abs=5e-6)
    assert th.noise_only_correlation(n=50, n_genes=100, method="spearman") == pytest.approx(0.67729, abs=5e-6)


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.0, 0.25, 0.7, 0.99])
def test_expected_correlation_two_genes_is_sign_probability(rho):
    # with G = 2 both correlations are sign((x1 - x2)(y1 - y2)): E = 2 asin(rho) / pi
    want = 2.0 * math.asin(rho) / math.pi
    assert th.expected_sample_correlation(rho, 2) == pytest.approx(want, abs=1e-12)
    assert th.expected_sample_correlation(rho, 2, method="spearman") == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.7, 0.95])
@pytest.mark.parametrize("g", [500, 5000, 10**6])
def test_expected_pearson_large_g_matches_expansion(rho, g):
    approx = rho * (1 - (1 - rho**2) / (2 * g))
    assert th.expected_sample_correlation(rho, g) == pytest.approx(approx, abs=5.0 / g**2)


@pytest.mark.parametrize("rho", [0.3, 0.7])
def test_expected_pearson_matches_integral_of_exact_density(rho):
    """Hotelling's exact density of r for G = 6 bivariate-normal pairs, integrated numerically."""
    g = 6

    def density(r):
        # f(r) = (G-2) Gamma(G-1) (1-rho^2)^((G-1)/2) (1-r^2)^((G-4)/2)
        #        / (sqrt(2 pi) Gamma(G - 1/2) (1 - rho r)^(G - 3/2)) 2F1(1/2, 1/2; G - 1/2; (1 + rho r)/2)
        from scipy.special import gammaln, hyp2f1

        logc = (math.log(g - 2) + gammaln(g - 1) + (g - 1) / 2 * math.log(1 - rho**2)
                - 0.5 * math.log(2 * math.pi) - gammaln(g - 0.5))
        return (math.exp(logc) * (1 - r * r) ** ((g - 4) / 2) / (1 - rho * r) ** (g - 1.5)
                * hyp2f1(0.5, 0.5, g - 0.5, (1 + rho * r) / 2))

    mass = integrate.quad(density, -1, 1)[0]
    mean = integrate.quad(lambda r: r * density(r), -1, 1)[0]
    assert mass == pytest.approx(1.0, abs=1e-8)
    assert th.expected_sample_correlation(rho, g) == pytest.approx(mean, abs=1e-8)


def test_spearman_population_limit():
    for rho in (0.2, 0.7):
        big = th.expected_sample_correlation(rho, 10**7, method="spearman")
        assert th.expected_sample_correlation(rho, None, method="spearman") == pytest.approx(big, abs=1e-6)


def test_effects_correlation_reduces_to_noise_only_and_uses_moments():
    assert th.effects_correlation(30, 2, 3) == pytest.approx(th.noise_only_rho(30, 2, 3))
    rng = np.random.default_rng(0)
    tr = rng.normal(size=(40, 300)) * 0.5 + rng.normal(size=300)
    te = rng.normal(size=300) + tr.mean(axis=0)
    mom = th.effect_moments(tr, te)
    dbar = tr.mean(axis=0)
    assert mom["cov"] == pytest.approx(np.cov(dbar, te, bias=True)[0, 1])
    val = th.effects_correlation(41, 1, 1, noise_var=2.0, **mom)
    num = mom["cov"] + 2.0
    den = math.sqrt((mom["var_train"] + 2.0 * (1 / 40 + 1)) * (mom["var_test"] + 2.0 * 2))
    assert val == pytest.approx(num / den)


# ----------------------------------------------------------------- bias-variance


def test_baseline_mse_crossover_is_where_mean_estimates_level_better():
    dbar = np.linspace(-2, 2, 401)
    for cit, (c, n) in [(True, (3, 20)), (False, (3, 20)), (True, (1, 49))]:
        r = th.baseline_mse(0.0, dbar, noise_var=1.3, n_controls=c, n_perturbed=n, m=2, controls_in_train=cit)
        np.testing.assert_array_equal(r.crossover, r.level_mean < r.level_control)
        bound = 1.3 * (1 / c + 1 / n) if cit else 1.3 * (1 / c - 1 / n)
        np.testing.assert_array_equal(r.crossover, dbar**2 < bound)


def test_baseline_mse_values():
    r = th.baseline_mse([1.0, -0.5], [0.2, 0.4], noise_var=[1.0, 4.0], n_controls=2, n_perturbed=8, m=3)
    w = 8 / 10
    want_c = np.array([1.0, 0.25]) + np.array([1.0, 4.0]) * (1 / 2 + 1 / 3)
    want_m = (np.array([1.0, -0.5]) - w * np.array([0.2, 0.4])) ** 2 + np.array([1.0, 4.0]) * (1 / 10 + 1 / 3)
    np.testing.assert_allclose(r.control, want_c)
    np.testing.assert_allclose(r.mean, want_m)
    assert r.control_total == pytest.approx(want_c.sum())
    text = str(r.summary())
    assert "all-training mean" in text and "control mean" in text


def test_effect_estimator_bias_sign_and_crossover():
    dbar = np.array([0.5, -0.2, 0.0])
    r = th.effect_estimator_mse(dbar, noise_var=1.0, n_controls=2, n_perturbed=40, m=2)
    np.testing.assert_allclose(r.centroid_bias, -dbar)
    np.testing.assert_allclose(r.simple_variance, 1.0)
    np.testing.assert_allclose(r.centroid_variance, 0.5 + 1 / 40)
    np.testing.assert_array_equal(r.centroid_wins, dbar**2 < (1 / 2 - 1 / 40))
    assert "centroid" in str(r.summary())


def test_embedding_error_identity_and_orthonormal():
    rng = np.random.default_rng(1)
    b = rng.normal(size=30)
    full = th.embedding_error(b, np.eye(30), noise_var=2.0, n_est=4, m=2)
    assert full.total == pytest.approx(full.full_total)
    w = np.linalg.qr(rng.normal(size=(30, 5)))[0]
    e = th.embedding_error(b, w, noise_var=2.0, n_est=4, m=2)
    assert e.variance_term == pytest.approx(5 * 2.0 * (1 / 4 + 1 / 2))
    assert e.bias_term == pytest.approx(np.sum((w.T @ b) ** 2))
    assert e.k == 5 and "embedding" in str(e.summary())


# ----------------------------------------------------------------- top-k


def test_loo_count_cdf_matches_brute_force_and_binomial():
    rng = np.random.default_rng(2)
    q = rng.uniform(size=(4, 11))
    for k in (1, 3, 10, 11):
        got = th.loo_count_cdf(q, k)
        for r in range(q.shape[0]):
            for g in range(q.shape[1]):
                poly = np.array([1.0])
                for j in range(q.shape[1]):
                    if j != g:
                        poly = np.convolve(poly, [1 - q[r, j], q[r, j]])
                assert got[r, g] == pytest.approx(poly[:k].sum(), abs=1e-13)
    qq = np.full((1, 60), 0.2)
    assert th.loo_count_cdf(qq, 7)[0, 5] == pytest.approx(stats.binom.cdf(6, 59, 0.2), rel=1e-12)


@pytest.mark.parametrize("cit", [True, False])
def test_topk_with_all_genes_equals_full_mse(cit):
    d = np.linspace(-1.5, 1.5, 12)
    kw = dict(noise_var=np.linspace(0.5, 2, 12), n_controls=2, n_perturbed=7, m=3, controls_in_train=cit)
    r = th.topk_mse(d, 0.4, k=12, **kw)
    full = th.baseline_mse(d, 0.4, **kw)
    assert r.control == pytest.approx(full.control_total, rel=1e-9)
    assert r.mean == pytest.approx(full.mean_total, rel=1e-9)


def test_topk_selection_probabilities_sum_to_k():
    d = np.r_[np.zeros(80), np.full(20, 1.5)]
    r = th.topk_mse(d, 0.2, k=15, noise_var=1.0, n_controls=1, n_perturbed=30, m=1)
    assert r.selection_prob.sum() == pytest.approx(15, abs=1e-6)
    assert r.selection_prob[80:].mean() > r.selection_prob[:80].mean()
    assert r.control > r.mean  # selection on |obs| shares the control noise
    assert "top 15" in str(r.summary())


def test_topk_single_gene_selection_is_a_one_dimensional_integral():
    """k = 1 of 2 i.i.d. null genes: E[o^2 ; |o| > |o'|] = E[max(o^2, o'^2)] for the control."""
    v = 1.0 + 1.0  # s^2 (1/m + 1/C) with m = C = 1
    # E[max of two chi2_1 * v] = v * (1 + 2/pi)
    r = th.topk_mse(np.zeros(2), k=1, n_controls=1, n_perturbed=5, m=1)
    assert r.control == pytest.approx(v * (1 + 2 / math.pi), rel=1e-9)


# ----------------------------------------------------------------- bad input


BAD = [
    (th.noise_only_rho, dict(n=0), "n", "integer >= 1"),
    (th.noise_only_rho, dict(n=1, n_controls=1), "n", "larger than n_controls"),
    (th.noise_only_rho, dict(n=10, n_controls=0), "n_controls", "integer >= 1"),
    (th.noise_only_rho, dict(n=10, m=1.5), "m", "integer >= 1"),
    (th.noise_only_correlation, dict(method="kendall"), "method", "one of"),
    (th.noise_only_correlation, dict(n_genes=1), "n_genes", "integer >= 2"),
    (th.expected_sample_correlation, dict(rho=1.5), "rho", "[-1, 1]"),
    (th.effects_correlation, dict(var_train=-1.0), "var_train", "[0, inf)"),
    (th.effects_correlation, dict(var_train=1.0, var_test=1.0, cov=2.0), "cov", "at most"),
    (th.effects_correlation, dict(noise_var=0.0), "noise_var", "(0, inf)"),
    (th.baseline_mse, dict(d_test=[1.0, np.nan]), "d_test", "finite"),
    (th.baseline_mse, dict(d_test=1.0, noise_var=-1.0), "noise_var", "> 0"),
    (th.baseline_mse, dict(d_test=1.0, n_perturbed=0), "n_perturbed", "integer >= 1"),
    (th.effect_estimator_mse, dict(d_train_mean="x"), "d_train_mean", "numeric"),
    (th.topk_mse, dict(d_test=np.zeros(5), k=6), "k", "[1, 5]"),
    (th.topk_mse, dict(d_test=np.zeros(5), k=0), "k", "integer >= 1"),
    (th.embedding_error, dict(bias=np.zeros(4), basis=np.zeros((3, 2))), "basis", "G = 4"),
    (th.validate, dict(closed_form="nope"), "closed_form", "one of"),
    (th.validate, dict(closed_form="topk_mse", params={"d_test": 0.0}), "params", "'k'"),
    (th.validate, dict(closed_form="noise_only_rho", n_replicates=1), "n_replicates", "integer >= 2"),
]


@pytest.mark.parametrize("fn,kwargs,name,constraint", BAD)
def test_bad_input_names_parameter_constraint_and_value(fn, kwargs, name, constraint):
    with pytest.raises((ValueError, TypeError)) as err:
        fn(**kwargs)
    msg = str(err.value)
    assert f"'{name}'" in msg and constraint in msg and "got" in msg


def test_mismatched_gene_lengths():
    with pytest.raises(ValueError, match="common length"):
        th.baseline_mse(np.zeros(3), np.zeros(4))
