"""Wilcoxon DE of a stored screen, read by blocks of cells, equals the in-memory table."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import simpert as sp_
from simpert import de


@pytest.fixture(scope="module")
def screen():
    a = sp_.sim.screen(n_genes=60, n_perturbations=7, n_control_cells=40, cells_per_perturbation=12,
                       p_effect=0.3, effect_size=1.0, rng=4)
    # a user's layout: cells not grouped by perturbation, a label with no cells
    order = np.random.default_rng(0).permutation(a.n_obs)
    a = a[order].copy()
    a.obs["perturbation"] = a.obs["perturbation"].cat.add_categories(["EMPTY"])
    return a


def _stored(adata, tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    if suffix == ".zarr":
        adata.write_zarr(path)
    else:
        adata.write_h5ad(path)
    return str(path)


@pytest.mark.parametrize("suffix", [".zarr", ".h5ad"])
@pytest.mark.parametrize("chunk", [7, 50, 10_000])
def test_stored_equals_memory(screen, tmp_path, suffix, chunk):
    path = _stored(screen, tmp_path, suffix)
    mem = de.wilcoxon(screen)
    got = de.wilcoxon(path, chunk_cells=chunk)
    pd.testing.assert_frame_equal(got, mem, check_exact=False, rtol=1e-12, atol=0)
    # the ranks give exactly the same statistics
    np.testing.assert_array_equal(got["statistic"].to_numpy(), mem["statistic"].to_numpy())


def test_stored_lognorm_and_layer(screen, tmp_path):
    a = screen.copy()
    X = sp.csr_matrix(a.X, dtype=np.float64)
    tot = np.asarray(X.sum(axis=1)).ravel()
    X = sp.diags(1e4 / tot) @ X
    X.data = np.log1p(X.data)
    a.layers["logn"] = X.tocsr()
    path = _stored(a, tmp_path, ".h5ad")
    mem = de.wilcoxon(a, layer="logn")
    got = de.wilcoxon(path, layer="logn", chunk_cells=30)
    pd.testing.assert_frame_equal(got, mem, check_exact=False, rtol=1e-12, atol=0)


def test_stored_on_dask(screen, tmp_path):
    path = _stored(screen, tmp_path, ".zarr")
    mem = de.wilcoxon(screen, fdr=0.1, target_sum=1e4)
    got = de.wilcoxon(path, fdr=0.1, target_sum=1e4, chunk_cells=40, n_workers=2)
    pd.testing.assert_frame_equal(got, mem, check_exact=False, rtol=1e-12, atol=0)


def test_stored_bad_input(screen, tmp_path):
    path = _stored(screen, tmp_path, ".zarr")
    with pytest.raises(ValueError, match="'control'"):
        de.wilcoxon(path, control="nope")
    with pytest.raises(ValueError, match="'groupby'"):
        de.wilcoxon(path, groupby="nope")
    with pytest.raises(ValueError, match="'chunk_cells'"):
        de.wilcoxon(path, chunk_cells=0)
    with pytest.raises(FileNotFoundError, match="'adata'"):
        de.wilcoxon(str(tmp_path / "missing.zarr"))
