"""The MatrixMarket directory transport (simpert <-> R): exact round trips."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from simpert.cli._mtx import is_mtx_dir, jsonable, read_mtx_dir, write_mtx_dir


def _screen(n_genes=30, n_pert=4, cells=5, seed=0, dense=False):
    """A screen in the documented schema, built by hand (independent of simpert.sim)."""
    rng = np.random.default_rng(seed)
    perts = ["control"] + [f"p{i}" for i in range(n_pert)]
    genes = [f"g{i:05d}" for i in range(n_genes)]
    labels = np.repeat(perts, cells)
    n = labels.size
    counts = rng.poisson(3, size=(n, n_genes))
    x = counts.astype(np.int64) if dense else sp.csr_matrix(counts.astype(np.int32))
    obs = pd.DataFrame({
        "perturbation": pd.Categorical(labels, categories=perts),
        "is_control": labels == "control",
        "target": ["" if lab == "control" else genes[perts.index(lab)] for lab in labels],
        "guide": pd.Categorical([f"{lab}_1" if lab != "control" else "control" for lab in labels]),
        "replicate": np.zeros(n, dtype=np.int64),
        "size_factor": rng.lognormal(0, 0.2, n),
        "escaped": rng.uniform(size=n) < 0.2,
    }, index=[f"c{i:05d}" for i in range(n)])
    var = pd.DataFrame({"base_mean": rng.gamma(2, 2, n_genes),
                        "is_regulator": rng.uniform(size=n_genes) < 0.2}, index=genes)
    a = ad.AnnData(X=x, obs=obs, var=var)
    a.uns["simpert"] = {
        "kind": "screen", "control": "control", "version": "0.1.0",
        "seed": {"entropy": "7", "spawn_key": [1, 2]},
        "params": {"n_genes": n_genes, "modality": "crispri", "p_effect": 0.1, "gene_means": None},
        "truth": {
            "perturbations": np.array(perts[1:], dtype=object),
            "genes": np.array(genes, dtype=object),
            "targets": np.array(genes[1:n_pert + 1], dtype=object),
            "cells_per_perturbation": np.full(n_pert, cells),
            "log2fc": rng.normal(size=(n_pert, n_genes)),
            "shared_log2fc": rng.normal(size=n_genes),
            "replicate_log2fc": rng.normal(size=(1, n_genes)),
            "guides": np.array([f"p{i}_1" for i in range(n_pert)], dtype=object),
        },
    }
    return a


def _assert_same(a, b):
    xa = a.X.toarray() if sp.issparse(a.X) else a.X
    xb = b.X.toarray() if sp.issparse(b.X) else b.X
    np.testing.assert_array_equal(xa, xb)
    assert sp.issparse(a.X) == sp.issparse(b.X)
    assert a.X.dtype == b.X.dtype
    pd.testing.assert_frame_equal(a.obs, b.obs)
    pd.testing.assert_frame_equal(a.var, b.var)
    ta, tb = a.uns["simpert"]["truth"], b.uns["simpert"]["truth"]
    assert set(ta) == set(tb)
    for key, value in ta.items():
        va, vb = np.asarray(value), np.asarray(tb[key])
        assert va.shape == vb.shape, key
        if va.dtype.kind in "OUS":
            assert [str(v) for v in va.ravel()] == [str(v) for v in vb.ravel()], key
        else:
            np.testing.assert_array_equal(va, vb, err_msg=key)  # CSV written with round-trip precision
    for key in ("kind", "control", "version", "seed", "params"):
        assert jsonable(a.uns["simpert"][key]) == jsonable(b.uns["simpert"][key])


@pytest.mark.parametrize("dense", [False, True])
def test_round_trip_is_exact(tmp_path, dense):
    a = _screen(dense=dense)
    write_mtx_dir(a, tmp_path / "d")
    assert is_mtx_dir(tmp_path / "d")
    _assert_same(a, read_mtx_dir(tmp_path / "d"))


def test_orientation_is_genes_by_observations(tmp_path):
    a = _screen()
    write_mtx_dir(a, tmp_path / "d")
    m = scipy.io.mmread(tmp_path / "d" / "counts.mtx")
    assert m.shape == (a.n_vars, a.n_obs)
    np.testing.assert_array_equal(sp.csr_matrix(m).toarray(), a.X.toarray().T)
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert meta["orientation"] == "genes x observations"
    log2fc = pd.read_csv(tmp_path / "d" / "log2fc.csv", index_col=0)
    assert list(log2fc.index) == list(a.uns["simpert"]["truth"]["perturbations"])
    assert list(log2fc.columns) == list(a.var_names)


def test_overwrite_replaces_directory(tmp_path):
    write_mtx_dir(_screen(seed=1), tmp_path / "d")
    (tmp_path / "d" / "stale.txt").write_text("x")
    a = _screen(seed=2, n_genes=12)
    write_mtx_dir(a, tmp_path / "d")
    assert not (tmp_path / "d" / "stale.txt").exists()
    _assert_same(a, read_mtx_dir(tmp_path / "d"))
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temporary left behind


def test_minimal_directory_as_r_writes_it(tmp_path):
    """counts.mtx with a real field + obs.csv with R's TRUE/FALSE and no meta.json."""
    d = tmp_path / "d"
    d.mkdir()
    counts = np.array([[1, 0, 3], [2, 5, 0]])  # 2 genes x 3 samples
    scipy.io.mmwrite(d / "counts.mtx", sp.coo_matrix(counts.astype(float)), field="real")
    (d / "obs.csv").write_text('"obs_name","perturbation","is_control","target"\n'
                               '"s1","KD1",FALSE,"g1"\n"s2","control",TRUE,""\n"s3","KD1",FALSE,"g1"\n')
    b = read_mtx_dir(d)
    np.testing.assert_array_equal(b.X.toarray(), counts.T)
    assert b.X.dtype == np.int64
    assert list(b.obs["perturbation"].cat.categories) == ["control", "KD1"]
    assert b.obs["is_control"].tolist() == [False, True, False]
    assert b.obs["target"].tolist() == ["g1", "", "g1"]
    assert b.uns["simpert"]["control"] == "control"


def test_missing_files_and_mismatch(tmp_path):
    with pytest.raises(FileNotFoundError, match="counts.mtx"):
        read_mtx_dir(tmp_path)
    a = _screen()
    write_mtx_dir(a, tmp_path / "d")
    obs = pd.read_csv(tmp_path / "d" / "obs.csv").iloc[:-1]
    obs.to_csv(tmp_path / "d" / "obs.csv", index=False)
    with pytest.raises(ValueError, match="one obs.csv row per column"):
        read_mtx_dir(tmp_path / "d")
