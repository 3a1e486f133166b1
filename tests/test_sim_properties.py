"""Property tests: for random valid parameters, every simulator gives finite, in-range output.

Counts are non-negative integers (int32 or int64, never wrapped), the truth is finite, and
the output has the promised shape; or the parameters are refused with the usual message
(never a deep numpy error, never NaN in silence).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simpert as sp

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
finite = dict(allow_nan=False, allow_infinity=False)


def _check_counts(X):
    data = X.data if hasattr(X, "data") and not isinstance(X, np.ndarray) else np.asarray(X)
    assert np.issubdtype(data.dtype, np.integer)
    assert data.size == 0 or data.min() >= 0


def _check_truth(adata):
    tr = adata.uns["simpert"]["truth"]
    for key in ("log2fc", "specific_log2fc", "shared_log2fc"):
        assert np.all(np.isfinite(np.asarray(tr[key], dtype=float))), key


@SETTINGS
@given(
    n_genes=st.integers(5, 40),
    n_pert=st.integers(0, 5),
    cells=st.floats(1.0, 30.0),
    phi=st.floats(0.0, 2.0),
    reps=st.integers(1, 3),
    shape=st.floats(0.05, 5.0),
    scale=st.floats(1e-3, 1e4),
    a0=st.floats(0.0, 50.0),
    a1=st.floats(0.0, 50.0),
    loc=st.floats(-20.0, 20.0),
    lib_sd=st.floats(0.0, 2.0),
    modality=st.sampled_from(["crispri", "ko", "crispra"]),
    escape=st.floats(0.0, 0.99),
    p_effect=st.floats(0.0, 1.0),
    effect_size=st.floats(0.0, 8.0),
    strength=st.floats(0.0, 4.0),
    pseudobulk=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_screen_counts_are_finite_non_negative_integers(n_genes, n_pert, cells, phi, reps, shape, scale, a0,
                                                        a1, loc, lib_sd, modality, escape, p_effect,
                                                        effect_size, strength, pseudobulk, seed):
    n_pert = min(n_pert, n_genes)
    kw = dict(n_genes=n_genes, n_perturbations=n_pert, n_control_cells=5, cells_per_perturbation=cells,
              cell_count_dispersion=phi, n_replicates=reps, mean_shape=shape, mean_scale=scale,
              dispersion_a0=a0, dispersion_a1=a1, library_loc=loc, library_sd=lib_sd, modality=modality,
              escape_rate=escape, p_effect=p_effect, effect_size=effect_size, systematic_strength=strength)
    try:
        a = sp.sim.screen(rng=seed, output="pseudobulk" if pseudobulk else "cells", **kw)
    except ValueError as err:  # refused: only for counts beyond 2^53, with the parameters named
        assert "2^53" in str(err) and "'library_loc'" in str(err), err
        return
    _check_counts(a.X)
    _check_truth(a)
    assert a.n_vars == n_genes
    assert np.all(np.isfinite(a.obs["size_factor"].to_numpy(dtype=float))) if "size_factor" in a.obs else True


@SETTINGS
@given(
    n=st.integers(3, 30),
    genes=st.integers(2, 30),
    noise=st.sampled_from(["gaussian", "nb"]),
    sigma=st.floats(1e-3, 1e3, **finite),
    effect_sd=st.floats(0.0, 10.0),
    mean=st.floats(1e-3, 1e6),
    disp=st.floats(0.0, 10.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_noise_only_output_is_finite(n, genes, noise, sigma, effect_sd, mean, disp, seed):
    try:
        a = sp.sim.noise_only(n=n, n_genes=genes, n_train=max(2, n // 2), noise=noise, sigma=sigma,
                              effect_sd=effect_sd, mean=mean, dispersion=disp, rng=seed)
    except ValueError as err:
        assert "parameter" in str(err), err
        return
    X = np.asarray(a.X)
    assert np.all(np.isfinite(X))
    if noise == "nb":
        assert np.issubdtype(X.dtype, np.integer) and X.min() >= 0


@SETTINGS
@given(
    genes=st.integers(2, 12),
    p=st.floats(0.0, 0.6),
    radius=st.one_of(st.none(), st.floats(0.01, 3.0)),
    steps=st.one_of(st.none(), st.integers(1, 60)),
    clamp=st.floats(-100.0, 100.0),
    output=st.sampled_from(["continuous", "counts"]),
    scale=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_var_network_output_is_finite_or_refused(genes, p, radius, steps, clamp, output, scale, seed):
    net = sp.sim.erdos_renyi(genes, p, rng=seed)
    try:
        a = sp.sim.var_network(net, n_samples=3, n_controls=3, spectral_radius=radius, steps=steps,
                               clamp_value=clamp, output=output, count_scale=scale, rng=seed)
    except ValueError as err:
        assert "parameter" in str(err), err
        return
    if output == "counts":
        _check_counts(a.X)
    else:
        assert np.all(np.isfinite(np.asarray(a.X)))
    _check_truth(a)


@pytest.mark.parametrize("seed", [0, 1])
def test_refusal_names_the_parameters(seed):
    with pytest.raises(ValueError, match="'library_loc'"):
        sp.sim.screen(n_genes=10, n_perturbations=1, library_loc=20.0, mean_scale=1e9, rng=seed)


def test_rates_found_by_the_property_tests_are_refused_by_name():
    """Cases the property tests found: a tiny cell-count dispersion, huge noise-only rates."""
    a = sp.sim.screen(n_genes=5, n_perturbations=1, cells_per_perturbation=1.0,
                      cell_count_dispersion=2.2e-309, rng=0)
    assert a.n_obs > 0
    with pytest.raises(ValueError, match="'mean'"):
        sp.sim.noise_only(noise="nb", mean=1e12, effect_sd=10.0, dispersion=10.0, n=30, n_train=10, n_genes=30,
                          rng=0)
