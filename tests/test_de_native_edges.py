"""Unit checks of the native engine's edge cases: the locfit trend against R's locfit, the
dispersion optimisers at a zero gradient and against each other, the optim refit, R's
determinant range in the Cox-Reid term and the ``fit_type`` argument."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

import simpert.de._native_dispersion as nd
from simpert.de import deseq
from simpert.de._native_dispersion import armijo_max_log_alpha, newton_max_log_alpha
from simpert.de._native_glm import irls_one_factor, optim_refit
from simpert.de._native_locfit import locfit_1d
from simpert.de._native_nbloglik import log_posterior, log_posterior_derivs
from simpert.de._native_trend import fit_trend
from test_de_native import _load


def test_locfit_matches_r_locfit(rscript, tmp_path):
    """Predictions inside and beyond the data range equal R's ``predict(locfit(...))``."""
    rng = np.random.default_rng(12)
    frames = []
    for s, n in enumerate([40, 300, 1500]):
        m = np.exp(rng.uniform(np.log(0.1), np.log(5000), n))
        d = np.exp(np.log(0.05 + 1 / m) + rng.normal(0, 1, n))
        frames.append(pd.DataFrame({"set": s, "m": m, "d": d}))
    data = pd.concat(frames)
    data.to_csv(tmp_path / "in.csv", index=False)
    code = (
        'suppressPackageStartupMessages(library(locfit)); '
        f'd <- read.csv("{tmp_path / "in.csv"}"); out <- NULL; '
        'for (s in unique(d$set)) { e <- d[d$set == s, ]; '
        'df <- data.frame(logDisps = log(e$d), logMeans = log(e$m)); '
        'fit <- locfit(logDisps ~ logMeans, data = df, weights = e$m); '
        'xs <- seq(min(df$logMeans) - 1, max(df$logMeans) + 1, length = 400); '
        'out <- rbind(out, data.frame(set = s, x = xs, p = predict(fit, data.frame(logMeans = xs)))) }; '
        f'write.csv(out, "{tmp_path / "out.csv"}", row.names = FALSE)'
    )
    res = subprocess.run([rscript, "-e", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    ref = pd.read_csv(tmp_path / "out.csv")
    for s, e in data.groupby("set"):
        fit = locfit_1d(np.log(e["m"].to_numpy()), np.log(e["d"].to_numpy()), e["m"].to_numpy())
        r = ref[ref["set"] == s]
        # measured: 2e-8 (R's local solver works through an eigen decomposition)
        np.testing.assert_allclose(fit(r["x"].to_numpy()), r["p"].to_numpy(), atol=1e-6)


def test_local_trend_is_used_when_parametric_fails():
    rng = np.random.default_rng(3)
    means = np.exp(rng.uniform(np.log(0.1), np.log(5), 300))
    disps = 0.05 * means * np.exp(rng.normal(0, 0.5, 300))  # grows with the mean: a1 < 0
    tr = fit_trend(means, disps)
    assert tr.kind == "local" and tr.requested == "parametric"
    assert np.all(np.isfinite(tr(means))) and np.all(tr(means) > 0)
    assert fit_trend(means, disps, fit_type="mean").kind == "mean"
    with pytest.raises(ValueError, match="fit_type"):
        fit_trend(means, disps, fit_type="loess")


def test_deseq_fit_type_argument():
    ds = _load("meanfit")
    res = deseq(ds, fit_type="local")
    assert res.info["trend"] == "local"
    with pytest.raises(ValueError, match="fit_type"):
        deseq(ds, fit_type="glmGamPoi")


def _one_gene():
    rng = np.random.default_rng(0)
    y = rng.negative_binomial(5, 5 / (5 + 40.0), size=(3, 8)).astype(float)
    mu = np.tile(y.mean(axis=1, keepdims=True), (1, 8))
    return y, mu, np.array([0, 4])


def test_newton_stops_at_an_exact_zero_gradient(monkeypatch):
    y, mu, starts = _one_gene()
    a0 = np.array([-2.0, -1.0, -3.0])
    real = nd.log_posterior_derivs

    def derivs(yy, mm, st, a, pm=None, pv=None):
        g, h = real(yy, mm, st, a, pm, pv)
        g = np.where(a == -1.0, 0.0, g)  # the second gene starts at a stationary point
        return g, h

    monkeypatch.setattr(nd, "log_posterior_derivs", derivs)
    out = newton_max_log_alpha(y, mu, starts, a0, np.log(1e-9), np.log(10.0))
    assert out[1] == -1.0
    assert np.all(np.isfinite(out))


def test_line_search_and_newton_agree_on_regular_genes():
    y, mu, starts = _one_gene()
    a0 = np.log(np.full(3, 0.05))
    lo, hi = np.log(1e-9), np.log(10.0)
    a_n = newton_max_log_alpha(y, mu, starts, a0, lo, hi)
    a_r, iters, lp0, lp = armijo_max_log_alpha(y, mu, starts, a0, min_log_alpha=lo)
    g, _ = log_posterior_derivs(y, mu, starts, a_n)
    assert np.all(np.abs(g) < 1e-6)
    assert np.all(iters < 100) and np.all(lp >= lp0)
    # R's line search stops once a step gains less than 1e-6 in the objective
    np.testing.assert_allclose(a_r, a_n, atol=0.02)


def test_cox_reid_term_follows_r_determinant_range():
    # 101 levels of tiny weight sums: det(X'WX) underflows to 0 in R, the term is +Inf
    starts = np.arange(0, 202, 2)
    y = np.ones((1, 202))
    mu = np.full((1, 202), 2.0)
    a = np.array([np.log(2e4)])
    lp = log_posterior(y, mu, starts, a, r_det=True)
    g, _ = log_posterior_derivs(y, mu, starts, a, r_det=True)
    assert lp[0] == np.inf and np.isnan(g[0])
    assert np.isfinite(log_posterior(y, mu, starts, np.array([np.log(0.1)]), r_det=True)[0])
    # the default sums log weight sums: finite, and equal where R's det is finite
    assert np.isfinite(log_posterior(y, mu, starts, a)[0]) and np.isfinite(log_posterior_derivs(y, mu, starts, a)[0][0])
    a2 = np.array([np.log(0.1)])
    assert log_posterior(y, mu, starts, a2)[0] == log_posterior(y, mu, starts, a2, r_det=True)[0]


def test_optim_refit_reproduces_a_converged_fit():
    rng = np.random.default_rng(5)
    sizes = np.array([3, 3, 3])
    starts = np.r_[0, 3, 6]
    sf = rng.uniform(0.5, 2.0, 9)
    y = rng.negative_binomial(10, 10 / (10 + 50 * sf), size=(4, 9)).astype(float)
    alpha = np.full(4, 0.1)
    ind = np.array([False, True, True])
    lam = np.full(3, 1e-6 / np.log(2) ** 2)
    eta, n_iter = irls_one_factor(y, sf, alpha, starts, sizes, ind, lam[0], lam)
    assert np.all(n_iter < 100)
    start = np.add.reduceat(np.log(y / sf + 0.1), starts, axis=1) / sizes
    eta2, conv = optim_refit(y, sf, alpha, starts, sizes, start, start)
    assert conv.all()
    # L-BFGS-B with R's stopping rule (factr 1e7) and difference gradients
    np.testing.assert_allclose(eta2, eta, atol=1e-3)
