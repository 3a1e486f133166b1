"""fit_screen's cells per perturbation and their overdispersion, by hand from the cell counts."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from simpert import sim


@pytest.mark.parametrize("sizes", [(10, 30), (10, 30, 50, 70)])
def test_cell_count_dispersion_by_hand(sizes):
    # kills _estimate.py mutants of the cell-count dispersion `(var(ddof=1) - mean) / mean^2`
    # and of its `P > 1` condition (two perturbations are enough for a variance)
    rng = np.random.default_rng(0)
    labels = ["control"] * 200 + [f"p{i}" for i, n in enumerate(sizes) for _ in range(n)]
    X = rng.poisson(5.0, (len(labels), 40)).astype(np.float32)
    obs = pd.DataFrame({"perturbation": pd.Categorical(labels)}, index=[f"c{i}" for i in range(len(labels))])
    a = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(40)]))
    params = sim.estimate_params(a, control="control")
    n = np.array(sizes, dtype=float)
    mean = n.sum() / n.size
    var = ((n - mean) ** 2).sum() / (n.size - 1)
    assert params.cells_per_perturbation == pytest.approx(mean)
    assert params.cell_count_dispersion == pytest.approx(max((var - mean) / mean**2, 0.0))
    assert params.cell_count_dispersion > 0
    # no replicate column: one replicate (kills the mutant of that default)
    assert params.n_replicates == 1
