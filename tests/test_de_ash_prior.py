"""Estimates ash leaves out of the fit (non-finite, or with a zero or non-finite standard error)
get the summaries of the fitted prior itself: its mean, sd, P(< 0) and P(= 0). Each is checked
against scipy's distributions of the fitted components, whatever the weights came out as."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simpert.de._ash import ash


def _data(seed=5, n=400, spread=0.6):
    rng = np.random.default_rng(seed)
    beta = np.where(rng.random(n) < 0.6, 0.0, rng.normal(0.0, spread, n))
    se = rng.uniform(0.1, 0.3, n)
    bhat = beta + se * rng.normal(size=n)
    # three estimates left out of the fit: NaN estimate, infinite se, zero se
    bhat[:3] = [np.nan, 0.7, -0.4]
    se[:3] = [0.2, np.inf, 0.0]
    return bhat, se


def _expected_normal(pi, scale):
    """Mean, sd, P(<0), P(=0) of a mixture of N(0, scale^2) and point masses (scale 0), by scipy."""
    cont = scale > 0
    neg = sum(p * stats.norm(0.0, s).cdf(0.0) - p * 0.0 for p, s in zip(pi[cont], scale[cont]))
    zero = pi[~cont].sum()
    var = sum(p * stats.norm(0.0, s).var() for p, s in zip(pi[cont], scale[cont]))
    return 0.0, np.sqrt(var), neg, zero


def _expected_uniform(pi, a, b):
    """The same for a mixture of U(a, b) and point masses at a (a == b)."""
    mean = ex2 = neg = zero = 0.0
    for p, lo, hi in zip(pi, a, b):
        if hi > lo:
            d = stats.uniform(loc=lo, scale=hi - lo)
            mean += p * d.mean()
            ex2 += p * (d.var() + d.mean() ** 2)
            neg += p * d.cdf(0.0)  # continuous: P(X < 0) = P(X <= 0)
        else:
            mean += p * lo
            ex2 += p * lo**2
            neg += p * (lo < 0)
            zero += p * (lo == 0)
    return mean, np.sqrt(ex2 - mean**2), neg, zero


def _check_excluded(res, expected):
    mean, sd, neg, zero = expected
    ex = res.excluded
    assert ex[:3].all() and not ex[3:].any()
    np.testing.assert_allclose(res.posterior_mean[ex], mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.posterior_sd[ex], sd, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.negative_prob[ex], neg, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.lfdr[ex], zero, rtol=1e-10, atol=1e-12)
    # lfsr from its definition: the smaller of P(<= 0) and P(>= 0)
    np.testing.assert_allclose(res.lfsr[ex], min(neg + zero, 1.0 - neg), rtol=1e-10, atol=1e-12)


def test_excluded_estimates_get_the_normal_priors_summaries():
    # kills _ash.py _prior_summaries mutants on the normal branch: `g.scale > 0`, 0.5, 0.0,
    # `g.scale == 0` (P(=0) read at scale 0, not 1), `max(var, 0.0)` (prior variance < 1 here)
    bhat, se = _data()
    res = ash(bhat, se, grid=[0.1, 0.3, 1.0, 2.0])  # a scale of exactly 1 beside the point mass
    g = res.prior
    assert g.kind == "normal" and g.scale[0] == 0.0 and g.pi[0] > 0.05
    assert abs(g.pi[0] - g.pi[g.scale == 1.0].sum()) > 1e-3
    exp = _expected_normal(g.pi, g.scale)
    assert exp[1] ** 2 < 1.0
    _check_excluded(res, exp)


def test_excluded_estimates_get_the_normal_priors_summaries_without_point_mass():
    # kills the same mutants when no component sits at zero (P(=0) must be exactly 0)
    bhat, se = _data(seed=6)
    res = ash(bhat, se, pointmass=False)
    assert (res.prior.scale > 0).all()
    exp = _expected_normal(res.prior.pi, res.prior.scale)
    assert exp[3] == 0.0
    _check_excluded(res, exp)


@pytest.mark.parametrize("mixcompdist", ["uniform", "halfuniform"])
def test_excluded_estimates_get_the_uniform_priors_summaries(mixcompdist):
    # kills _prior_summaries mutants on the uniform branch: the width `b - a`, the share below zero
    # (`np.minimum(b, 0) - a`, its clip), the point mass at zero (`w == 0`, `a == 0`, `a < 0`)
    bhat, se = _data(seed=7, spread=1.0)
    res = ash(bhat, se, mixcompdist=mixcompdist)
    g = res.prior
    assert g.kind == "uniform"
    null = (g.a == 0) & (g.b == 0)
    assert null.any() and g.pi[null].sum() > 0.05
    _check_excluded(res, _expected_uniform(g.pi, g.a, g.b))


@pytest.mark.parametrize("grange", [(0.5, 10.0), (-10.0, -0.5), (-0.3, 10.0)])
def test_excluded_estimates_with_a_truncated_uniform_prior(grange):
    # kills the mutants seen only with truncated components: point masses off zero (`w > 0`,
    # `a < 0`), components entirely above zero (the clip at 0), the prior's variance floor
    bhat, se = _data(seed=8, spread=1.5)
    res = ash(bhat, se, mixcompdist="halfuniform", grange=grange)
    g = res.prior
    lo, hi = grange
    assert (g.a >= lo - 1e-12).all() and (g.b <= hi + 1e-12).all()
    w = g.b - g.a
    if lo > 0:
        assert g.pi[(w > 0) & (g.a > 0)].sum() > 1e-3  # weight on a component above zero
    if hi < 0:
        assert g.pi[(w == 0) & (g.a < 0)].sum() > 1e-3  # weight on a point mass below zero
    _check_excluded(res, _expected_uniform(g.pi, g.a, g.b))
