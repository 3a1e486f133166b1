"""ash's starting weights for the mixture solver: ashr's ``initpi`` (weight (n - K + 1) / n on
the null component, 1 / n on the others, when there are fewer components than estimates;
uniform otherwise), checked by stopping the solver after one iteration, where the result
still depends on the start."""

from __future__ import annotations

import numpy as np
import pytest

from simpert.de._ash import ash


def _data(n, seed=3):
    rng = np.random.default_rng(seed)
    beta = np.where(rng.random(n) < 0.5, 0.0, rng.normal(0.0, 1.5, n))
    se = rng.uniform(0.2, 0.6, n)
    return beta + se * rng.normal(size=n), se


@pytest.mark.parametrize("solver", ["mixsqp", "em"])
def test_default_start_is_ashr_initpi(solver):
    # kills _ash.py mutants of the default start `(n - K + 1) / n / max(1, nulls.size)`: one
    # solver iteration from ashr's initpi, written out here, gives the same weights
    bhat, se = _data(300)
    full = ash(bhat, se, solver=solver)
    K, n = full.pi.size, bhat.size
    assert K < n
    start = np.full(K, 1.0 / n)
    start[np.argmin(full.prior.scale)] = (n - K + 1) / n
    one = ash(bhat, se, solver=solver, max_iter=1)
    by_hand = ash(bhat, se, solver=solver, max_iter=1, x0=start)
    np.testing.assert_array_equal(one.pi, by_hand.pi)
    # and the start matters after one iteration (so the comparison has teeth)
    flat = ash(bhat, se, solver=solver, max_iter=1, x0=np.full(K, 1.0 / K))
    assert np.max(np.abs(flat.pi - one.pi)) > 1e-6


def test_start_is_uniform_with_more_components_than_estimates():
    # kills mutants of the `K < n` choice of the start: with fewer estimates than grid points
    # ashr starts from equal weights
    bhat, se = _data(6, seed=4)
    full = ash(bhat, se)
    K = full.pi.size
    assert K >= bhat.size
    one = ash(bhat, se, max_iter=1)
    by_hand = ash(bhat, se, max_iter=1, x0=np.full(K, 1.0 / K))
    np.testing.assert_array_equal(one.pi, by_hand.pi)


def test_given_start_reaches_the_same_optimum_and_is_checked():
    # kills mutants of the x0 check (a 1-d vector of K non-negative weights)
    bhat, se = _data(300)
    ref = ash(bhat, se)
    K = ref.pi.size
    other = ash(bhat, se, x0=np.full(K, 1.0 / K))
    np.testing.assert_allclose(other.pi @ ref.prior.scale**2, ref.pi @ ref.prior.scale**2, rtol=1e-4)
    assert other.loglik == pytest.approx(ref.loglik, abs=1e-4)
    with pytest.raises(ValueError, match="x0"):
        ash(bhat, se, x0=np.full(K + 1, 1.0 / (K + 1)))
    with pytest.raises(ValueError, match="x0"):
        ash(bhat, se, x0=np.full((1, K), 1.0 / K))
