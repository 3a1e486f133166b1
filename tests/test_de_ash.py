"""Adaptive shrinkage and mix-SQP: recovery of a known prior, closed forms vs quadrature,
and parity of the mixture weights with R's mixsqp."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pytest
from scipy import stats

from simpert.de._ash import AshPrior, ash, ash_grid, ash_loglik_matrix
from simpert.de._mixsqp import mixem, mixsqp, mixture_loglik

TRUE_PI = np.array([0.5, 0.3, 0.2])  # point mass at 0, N(0, 1), N(0, 3^2)
TRUE_SD = np.array([0.0, 1.0, 3.0])


def _simulate(n, rng):
    comp = rng.choice(3, size=n, p=TRUE_PI)
    beta = np.where(comp == 0, 0.0, rng.normal(0.0, 1.0, n) * TRUE_SD[comp])
    se = rng.uniform(0.2, 0.8, n)
    return beta, beta + se * rng.normal(size=n), se


def _tv_normal_mixtures(pi1, sd1, pi2, sd2):
    """Total variation between two zero-centred normal mixtures with point masses.

    Point masses at zero are compared directly; the continuous parts by numerical
    integration of |f1 - f2| on a fine grid.
    """
    x = np.linspace(-40, 40, 400_001)

    def dens(pi, sd):
        cont = sd > 0
        return (pi[cont][None, :] * stats.norm.pdf(x[:, None], scale=sd[cont][None, :])).sum(axis=1)

    atom = abs(pi1[sd1 == 0].sum() - pi2[sd2 == 0].sum())
    return 0.5 * (atom + np.trapezoid(np.abs(dens(pi1, sd1) - dens(pi2, sd2)), x))


def test_fitted_prior_close_to_truth_and_shrinkage_helps():
    rng = np.random.default_rng(11)
    beta, bhat, se = _simulate(5000, rng)
    res = ash(bhat, se)
    tv = _tv_normal_mixtures(res.pi, res.prior.scale, TRUE_PI, TRUE_SD)
    assert tv < 0.1, tv
    # the CDF-based (Kolmogorov) distance is smaller still
    grid = np.linspace(-10, 10, 2001)
    true_cdf = AshPrior("normal", TRUE_PI, scale=TRUE_SD).cdf(grid)
    assert np.max(np.abs(res.prior.cdf(grid) - true_cdf)) < 0.05
    mse_post = np.mean((res.posterior_mean - beta) ** 2)
    mse_raw = np.mean((bhat - beta) ** 2)
    assert mse_post < 0.8 * mse_raw, (mse_post, mse_raw)
    assert abs(res.prior_var() - TRUE_PI @ TRUE_SD**2) < 0.25
    assert res.converged


@pytest.mark.parametrize("mixcompdist", ["normal", "uniform", "halfuniform"])
def test_posterior_closed_forms_match_quadrature(mixcompdist):
    """Posterior mean, sd, lfsr and lfdr against numerical integration over beta."""
    rng = np.random.default_rng(3)
    _, bhat, se = _simulate(600, rng)
    res = ash(bhat, se, mixcompdist=mixcompdist)
    g = res.prior
    grid = np.linspace(-30, 30, 600_001)
    if g.kind == "normal":
        cont = g.scale > 0
        dens = (g.pi[cont] * stats.norm.pdf(grid[:, None], scale=g.scale[cont])).sum(axis=1)
        atoms = [(0.0, float(g.pi[~cont].sum()))]
    else:
        w = g.b - g.a
        cont = w > 0
        inside = (grid[:, None] >= g.a[cont]) & (grid[:, None] <= g.b[cont])
        dens = (g.pi[cont] * inside / w[cont]).sum(axis=1)
        atoms = [(float(a), float(p)) for a, p in zip(g.a[~cont], g.pi[~cont])]
    for j in rng.choice(bhat.size, 12, replace=False):
        lik = stats.norm.pdf(bhat[j], loc=grid, scale=se[j])
        post_c = dens * lik
        mass_c = np.trapezoid(post_c, grid)
        atom_w = [p * stats.norm.pdf(bhat[j], loc=a, scale=se[j]) for a, p in atoms]
        Z = mass_c + sum(atom_w)
        m1 = (np.trapezoid(grid * post_c, grid) + sum(a * w for (a, _), w in zip(atoms, atom_w))) / Z
        m2 = (np.trapezoid(grid**2 * post_c, grid) + sum(a * a * w for (a, _), w in zip(atoms, atom_w))) / Z
        neg = (np.trapezoid(np.where(grid < 0, post_c, 0.0), grid)
               + sum(w for (a, _), w in zip(atoms, atom_w) if a < 0)) / Z
        zero = sum(w for (a, _), w in zip(atoms, atom_w) if a == 0) / Z
        lfsr = 1 - neg if neg > 0.5 * (1 - zero) else neg + zero
        assert res.posterior_mean[j] == pytest.approx(m1, abs=2e-4)
        assert res.posterior_sd[j] == pytest.approx(math.sqrt(max(m2 - m1**2, 0)), abs=2e-4)
        assert res.lfdr[j] == pytest.approx(zero, abs=2e-4)
        assert res.lfsr[j] == pytest.approx(lfsr, abs=2e-4)


def test_prior_moments_match_sampling():
    rng = np.random.default_rng(5)
    a = np.array([0.0, -1.0, 0.0, -3.0])
    b = np.array([0.0, 0.0, 2.0, 0.0])
    pi = np.array([0.4, 0.3, 0.2, 0.1])
    g = AshPrior("uniform", pi, a=a, b=b)
    comp = rng.choice(4, size=2_000_000, p=pi)
    x = rng.uniform(a[comp], b[comp])
    assert g.mean() == pytest.approx(x.mean(), abs=3e-3)
    assert g.var() == pytest.approx(x.var(), rel=5e-3)
    assert g.fourth_moment() == pytest.approx(np.mean((x - x.mean()) ** 4), rel=2e-2)
    gn = AshPrior("normal", np.array([0.5, 0.5]), scale=np.array([0.0, 2.0]))
    assert gn.var() == pytest.approx(2.0)
    assert gn.kurtosis() == pytest.approx(6.0)  # 3/q for a spike-and-slab with q = 0.5


def test_grid_follows_ashr_rule():
    rng = np.random.default_rng(1)
    _, bhat, se = _simulate(300, rng)
    grid = ash_grid(bhat, se)
    assert grid[0] == 0
    smax = 2 * np.sqrt(np.max(bhat**2 - se**2))
    assert grid[-1] == pytest.approx(smax)
    assert grid[1] <= se.min() / 10 < grid[1] * math.sqrt(2)
    assert np.allclose(grid[2:] / grid[1:-1], math.sqrt(2))
    # all estimates inside their noise: sigma_max = 8 sigma_min
    g2 = ash_grid(np.zeros(5), np.ones(5), pointmass=False)
    assert g2[-1] == pytest.approx(0.8)


def test_em_and_mixsqp_reach_the_same_optimum():
    rng = np.random.default_rng(8)
    _, bhat, se = _simulate(2000, rng)
    r1 = ash(bhat, se, solver="mixsqp")
    r2 = ash(bhat, se, solver="em", tol=1e-12, max_iter=50_000)
    assert r1.penloglik >= r2.penloglik - 1e-6
    assert r1.penloglik - r2.penloglik < 1e-2
    assert np.max(np.abs(r1.posterior_mean - r2.posterior_mean)) < 1e-2


def test_missing_values_get_prior_summaries():
    rng = np.random.default_rng(2)
    _, bhat, se = _simulate(400, rng)
    bhat[:3] = np.nan
    se[3] = np.inf
    res = ash(bhat, se)
    assert res.excluded[:4].all() and not res.excluded[4:].any()
    assert np.allclose(res.posterior_mean[:4], res.prior.mean())
    assert np.allclose(res.posterior_sd[:4], math.sqrt(res.prior_var()))
    assert np.all((res.lfsr >= 0) & (res.lfsr <= 1))
    text = str(res.summary())
    assert "prior variance" in text and "excluded (NA)" in text
    assert res.to_frame().shape == (400, 6)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"mixcompdist": "gamma"}, "mixcompdist"),
        ({"prior": "flat"}, "prior"),
        ({"nullweight": 0.5}, "nullweight"),
        ({"mult": 1.0}, "mult"),
        ({"solver": "ipopt"}, "solver"),
        ({"tol": 0.0}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"grid": [-1.0, 1.0]}, "grid"),
        ({"se": -np.ones(5)}, "se"),
        ({"se": np.ones(4)}, "se"),
        ({"bhat": np.full(5, np.nan)}, "bhat"),
        ({"grange": (-1, 1)}, "grange"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, name):
    args = {"bhat": np.linspace(-1, 1, 5), "se": np.ones(5)}
    for key in ("bhat", "se"):
        if key in kwargs:
            args[key] = kwargs.pop(key)
    with pytest.raises((ValueError, TypeError), match=f"parameter '{name}' must be"):
        ash(args["bhat"], args["se"], **kwargs)


def _r_mixsqp(rscript, tmp_path, L, w):
    np.savetxt(tmp_path / "L.csv", L, delimiter=",")
    np.savetxt(tmp_path / "w.csv", w, delimiter=",")
    code = (
        "suppressMessages(library(mixsqp));"
        f"L <- as.matrix(read.csv('{tmp_path / 'L.csv'}', header = FALSE));"
        f"w <- scan('{tmp_path / 'w.csv'}', quiet = TRUE);"
        "fit <- mixsqp(L, w, control = list(verbose = FALSE));"
        "cat(jsonlite::toJSON(list(x = fit$x, status = fit$status), digits = NA))"
    )
    out = subprocess.run([rscript, "-e", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.r
def test_mixture_weights_equal_r_mixsqp(rscript, tmp_path):
    rng = np.random.default_rng(21)
    _, bhat, se = _simulate(3000, rng)
    grid = ash_grid(bhat, se)
    prior = AshPrior("normal", np.zeros(grid.size), scale=grid)
    logL = ash_loglik_matrix(bhat, se, prior)
    L = np.exp(logL - logL.max(axis=1, keepdims=True))
    # (1) unpenalised maximum likelihood
    r = _r_mixsqp(rscript, tmp_path, L, np.ones(L.shape[0]))
    ours = mixsqp(L)
    assert ours.converged
    np.testing.assert_allclose(ours.x, np.array(r["x"]), atol=1e-4)
    # (2) ashr's null-biased penalty as pseudo-observations with weights prior - 1
    pen = np.ones(grid.size)
    pen[0] = 10.0
    L2 = np.vstack([L, np.eye(grid.size)[[0]]])
    w2 = np.concatenate([np.ones(L.shape[0]), [9.0]])
    r2 = _r_mixsqp(rscript, tmp_path, L2, w2)
    ours2 = mixsqp(L, prior=pen)
    np.testing.assert_allclose(ours2.x, np.array(r2["x"]), atol=1e-4)
    # and the objective is at least as good as R's
    assert mixture_loglik(L, ours2.x, prior=pen) >= mixture_loglik(L, np.array(r2["x"]), prior=pen) - 1e-6
    # (3) weighted half-uniform likelihood matrix (the one TRADE's fit uses)
    res = ash(bhat, se, mixcompdist="halfuniform", prior="uniform", grange=(bhat.min(), bhat.max()))
    logL3 = ash_loglik_matrix(bhat, se, res.prior)
    L3 = np.exp(logL3 - logL3.max(axis=1, keepdims=True))
    w3 = rng.uniform(0.5, 2.0, L3.shape[0])
    r3 = _r_mixsqp(rscript, tmp_path, L3, w3)
    np.testing.assert_allclose(mixsqp(L3, w=w3).x, np.array(r3["x"]), atol=1e-4)


def test_mixsqp_low_rank_and_em_agree():
    rng = np.random.default_rng(4)
    _, bhat, se = _simulate(1500, rng)
    grid = ash_grid(bhat, se)
    logL = ash_loglik_matrix(bhat, se, AshPrior("normal", np.zeros(grid.size), scale=grid))
    L = np.exp(logL - logL.max(axis=1, keepdims=True))
    a = mixsqp(L)
    b = mixsqp(L, low_rank=True)
    c = mixem(L, tol=1e-13, max_iter=20_000)
    np.testing.assert_allclose(a.x, b.x, atol=1e-6)
    assert a.objective >= c.objective - 1e-6
    assert a.objective - c.objective < 0.05  # EM creeps towards the optimum on fine grids
    # mix-SQP's solution is a fixed point of EM (the likelihood cannot be improved by EM)
    d = mixem(L, x0=a.x, max_iter=50)
    assert abs(d.objective - a.objective) < 1e-7
    with pytest.raises(ValueError, match="parameter 'L' must be"):
        mixsqp(-L)
    with pytest.raises(ValueError, match="parameter 'prior' must be"):
        mixsqp(L, prior=np.zeros(grid.size))
