"""The memory a screen will take, estimated before drawing, against what drawing takes."""

from __future__ import annotations

import numpy as np
import pytest

import simpert as sp
from simpert.sim._engine import cell_bytes, model_from_uns


def test_cell_bytes_is_the_realised_csr_size_per_cell():
    """8 bytes per expected non-zero (NB zero probability at the mean size factor) plus 8 per
    row pointer; with little library-size spread the realised size of control cells agrees."""
    a = sp.sim.screen(n_genes=400, n_perturbations=1, n_control_cells=3000, cells_per_perturbation=5,
                      library_sd=0.02, mean_shape=0.6, mean_scale=1.0, rng=3)
    model = model_from_uns(a)
    ctrl = a[a.obs["perturbation"] == "control"].X
    realised = (ctrl.nnz * 8 + ctrl.shape[0] * 8) / ctrl.shape[0]
    est = cell_bytes(model)
    # the non-zeros of 3,000 cells: SE well under 1%; the size-factor spread adds under 1%
    assert abs(est - realised) / realised < 0.03, (est, realised)
    # and it is neither the dense size nor the row pointer alone
    assert 8 + 8 * 0.05 * 400 < est < 8 * 400


def test_cell_bytes_follows_the_mean_size_factor_of_a_wide_library_law():
    """Shallow genes (non-zero probability nearly linear in the mean) and a wide library law:
    the expected non-zeros per cell are sum_g E[1 - p0(s mu_g)] ~ E[s] sum_g mu_g, with
    E[s] = exp(loc + sd^2 / 2) for the log-normal size factor (not its median exp(loc))."""
    means = np.full(300, 0.02)
    a = sp.sim.screen(n_genes=300, n_perturbations=1, n_control_cells=4000, cells_per_perturbation=5,
                      gene_means=means, library_loc=0.3, library_sd=0.6, dispersion_a0=0.0,
                      dispersion_a1=0.0, rng=9)
    model = model_from_uns(a)
    ctrl = a[a.obs["perturbation"] == "control"].X
    realised = ctrl.nnz / ctrl.shape[0]
    expected_nnz = (cell_bytes(model) - 8.0) / 8.0
    # Poisson(s mu): E[1 - exp(-s mu)] by the log-normal's expectation, numerically
    z = np.linspace(-8, 8, 4001)
    w = np.exp(-z ** 2 / 2)
    w /= w.sum()
    exact = 300 * float(np.sum(w * (1 - np.exp(-np.exp(0.3 + 0.6 * z) * 0.02))))
    assert abs(expected_nnz - exact) / exact < 0.02, (expected_nnz, exact)
    # 4,000 cells of about 8 non-zeros each: SE of the mean about 0.6%
    assert abs(realised - exact) / exact < 0.03, (realised, exact)


def test_max_expected_mean_is_the_largest_mean_at_six_library_sds():
    """Without effects or nuisances the bound is max(gene_means) * exp(loc + 6 sd); CRISPRa
    multiplies it by the activation fold (a fully efficient guide)."""
    from simpert.sim._engine import max_expected_mean

    means = np.array([1.0, 5.0, 50.0, 0.5])
    kw = dict(n_genes=4, n_perturbations=2, n_control_cells=5, cells_per_perturbation=3, gene_means=means,
              library_loc=1.0, library_sd=0.5, p_effect=0.0, rng=1)
    a = sp.sim.screen(**kw)
    assert max_expected_mean(model_from_uns(a)) == pytest.approx(50.0 * np.exp(1.0 + 6 * 0.5), rel=1e-12)
    b = sp.sim.screen(**kw, modality="crispra", activation_fold=3.0)
    assert max_expected_mean(model_from_uns(b)) == pytest.approx(3.0 * 50.0 * np.exp(4.0), rel=1e-12)


def test_expected_counts_beyond_two_to_the_53_are_refused_before_drawing():
    # 1e9 x exp(20) x exp(6 x 0.2) ~ 1.6e18 > 2^53 ~ 9.0e15
    with pytest.raises(ValueError, match="library_loc.*2\\^53"):
        sp.sim.screen(n_genes=3, n_perturbations=1, n_control_cells=3, cells_per_perturbation=3,
                      gene_means=[1e9, 1.0, 1.0], library_loc=20.0, rng=0)
    # 1e9 x exp(2) x exp(1.2) ~ 2.5e10: fine
    sp.sim.screen(n_genes=3, n_perturbations=1, n_control_cells=3, cells_per_perturbation=3,
                  gene_means=[1e9, 1.0, 1.0], library_loc=2.0, rng=0)


def test_expected_counts_of_control_cells_given_their_program_activity():
    """A control cell's expected count is s_c * mu_g * 2^(a_c . L_g) given its program
    activity a_c (no effects, one replicate); without the activity, the expectation over its
    normal law, 2^(ln 2 sd^2 sum_j L_jg^2 / 2)."""
    from simpert.sim._engine import Design, expected_matrix

    a = sp.sim.screen(n_genes=15, n_perturbations=1, n_control_cells=4, cells_per_perturbation=3,
                      n_programs=2, program_sd=0.7, program_density=0.6, rng=2)
    model = model_from_uns(a)
    L = model.program_loadings
    assert L.shape == (2, 15) and np.abs(L).sum() > 0
    n = 4
    design = Design(group=np.zeros(n, np.int64), guide=np.full(n, -1), replicate=np.zeros(n, np.int64))
    s = np.array([0.5, 1.0, 1.7, 2.2])
    A = np.random.default_rng(0).normal(0.0, 0.7, size=(n, 2))
    got = expected_matrix(model, design, s, np.zeros(n, bool), np.zeros(n), activity=A)
    want = s[:, None] * model.base_mean[None, :] * np.exp2(A @ L)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    avg = expected_matrix(model, design, s, np.zeros(n, bool), np.zeros(n))
    want_avg = s[:, None] * model.base_mean[None, :] * np.exp2(np.log(2) * 0.7 ** 2 * (L ** 2).sum(axis=0) / 2)
    np.testing.assert_allclose(avg, want_avg, rtol=1e-12)
