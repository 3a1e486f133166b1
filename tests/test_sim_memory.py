"""The memory a screen will take, estimated before drawing, against what drawing takes."""

from __future__ import annotations

import numpy as np

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
