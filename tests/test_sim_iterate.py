"""``sim.iterate``: the recursion x_t = c + x_{t-1} W with the targets clamped after each step,
against a plain loop over dense matrices."""

from __future__ import annotations

import numpy as np

import simpert as sp


def _loop(W, x0, target, steps, clamp, persistent):
    x = x0.copy()
    for _ in range(steps):
        x = (x0 if persistent else 0.0) + x @ W
        for i, t in enumerate(target):
            if t >= 0:
                x[i, t] = clamp
    return x


def test_iterate_matches_a_plain_loop_with_the_default_clamp_of_one():
    # kills mutants of iterate's default clamp value (1.0) and of its recursion
    rng = np.random.default_rng(0)
    G = 12
    W = rng.normal(0, 0.2, (G, G)) * (rng.random((G, G)) < 0.3)
    x0 = rng.normal(size=(4, G))
    target = np.array([0, 5, -1, 11])
    for persistent in (True, False):
        got = sp.sim.iterate(W, x0, target, 3, persistent=persistent)
        np.testing.assert_allclose(got, _loop(W, x0, target, 3, 1.0, persistent), rtol=1e-12, atol=1e-14)
    got = sp.sim.iterate(W, x0, target, 2, clamp_value=-2.0)
    np.testing.assert_allclose(got, _loop(W, x0, target, 2, -2.0, True), rtol=1e-12, atol=1e-14)
