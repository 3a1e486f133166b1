"""Bad input to ``simpert.de.deseq``: one line per case (DESeq2's style of input checks)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from simpert.de import DEDataset, deseq


def _adata(n_genes=40, levels=("control", "control", "control", "A", "A", "A"), seed=0, dtype=np.int64):
    rng = np.random.default_rng(seed)
    X = rng.negative_binomial(5, 0.1, size=(len(levels), n_genes)).astype(dtype)
    obs = pd.DataFrame({"perturbation": list(levels), "replicate": list(range(len(levels)))},
                       index=[f"s{i}" for i in range(len(levels))])
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


def _with_x(fn):
    a = _adata()
    X = a.X.astype(float)
    fn(X)
    a.X = X
    return a


def _nan(X):
    X[0, 0] = np.nan


def _neg(X):
    X[1, 2] = -3


def _frac(X):
    X[2, 3] = 2.5


def _inf(X):
    X[0, 1] = np.inf


def _no_control():
    a = _adata()
    a.obs["perturbation"] = ["ctrl"] * 3 + ["A"] * 3
    return a


def _only_control():
    a = _adata()
    a.obs["perturbation"] = ["control"] * 6
    return a


def _missing_label():
    a = _adata()
    a.obs["perturbation"] = ["control", "control", None, "A", "A", "A"]
    return a


def _no_replicates():
    return _adata(levels=("control", "A", "B"))


CASES = [
    # (id, adata factory, kwargs, exception, fragment of the message)
    ("nan_counts", lambda: _with_x(_nan), {}, ValueError, "without NaN"),
    ("negative_counts", lambda: _with_x(_neg), {}, ValueError, "non-negative"),
    ("non_integer_counts", lambda: _with_x(_frac), {}, ValueError, "integers"),
    ("infinite_counts", lambda: _with_x(_inf), {}, ValueError, "finite"),
    ("no_control_samples", _no_control, {}, ValueError, "parameter 'control'"),
    ("only_control", _only_control, {}, ValueError, "at least one level besides the control"),
    ("missing_design_column", _adata, {"design": "condition"}, ValueError, "parameter 'design'"),
    ("missing_labels", _missing_label, {}, ValueError, "missing values"),
    ("no_replicates", _no_replicates, {}, ValueError, "replicates"),
    ("unknown_backend", _adata, {"backend": "edger"}, ValueError, "parameter 'backend'"),
    ("bad_alpha", _adata, {"alpha": 1.5}, ValueError, "parameter 'alpha'"),
    ("bad_shrink", _adata, {"shrink": "magic"}, ValueError, "parameter 'shrink'"),
    ("apeglm_needs_pydeseq2", _adata, {"shrink": "apeglm"}, ValueError, "parameter 'shrink'"),
    ("bad_cooks", _adata, {"cooks": "yes"}, TypeError, "parameter 'cooks'"),
    ("bad_n_jobs", _adata, {"n_jobs": 1.5}, ValueError, "parameter 'n_jobs'"),
    ("not_anndata", lambda: np.ones((4, 4)), {}, TypeError, "parameter 'adata'"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case):
    _, make, kwargs, exc, fragment = case
    with pytest.raises(exc, match=fragment):
        deseq(make(), **kwargs)


def test_mismatched_metadata_rows():
    with pytest.raises(ValueError, match="parameter 'obs'"):
        DEDataset.from_arrays(np.ones((6, 5), dtype=int), pd.DataFrame({"perturbation": ["control", "A"]}))


def test_mismatched_gene_names():
    obs = pd.DataFrame({"perturbation": ["control"] * 3 + ["A"] * 3})
    with pytest.raises(ValueError, match="parameter 'genes'"):
        DEDataset.from_arrays(np.ones((6, 5), dtype=int), obs, genes=["a", "b"])


def test_all_zero_genes_give_na_like_deseq2():
    a = _adata()
    a.X[:, :3] = 0
    res = deseq(a)
    t = res.table
    zero = t["gene"].isin(["g0", "g1", "g2"])
    assert (t.loc[zero, "base_mean"] == 0).all()
    assert t.loc[zero, ["log2fc", "lfc_se", "stat", "pvalue", "padj"]].isna().all().all()
    assert t.loc[~zero, "log2fc"].notna().all()


def test_single_sample_perturbation_is_tested_like_deseq2():
    """A level with one sample is allowed (as in DESeq2): it gets LFCs and p-values."""
    a = _adata(levels=("control", "control", "control", "A", "A", "A", "B"))
    res = deseq(a)
    b = res.table[res.table["perturbation"] == "B"]
    assert b["pvalue"].notna().sum() > 0
    assert np.isfinite(b["lfc_se"]).all()


def test_single_cell_input_is_pseudobulked():
    rng = np.random.default_rng(1)
    levels = np.repeat(["control", "A"], 30)
    reps = np.tile(np.repeat([0, 1, 2], 10), 2)
    X = rng.negative_binomial(2, 0.3, size=(60, 30))
    obs = pd.DataFrame({"perturbation": pd.Categorical(levels, categories=["control", "A"]), "replicate": reps},
                       index=[f"c{i}" for i in range(60)])
    cells = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(30)]))
    res = deseq(cells)
    assert len(res.size_factors) == 6
    pb = X.reshape(2, 3, 10, 30).sum(axis=2).reshape(6, 30)
    ref = deseq(ad.AnnData(X=pb, obs=pd.DataFrame({"perturbation": np.repeat(["control", "A"], 3)},
                                                  index=[f"s{i}" for i in range(6)]),
                           var=pd.DataFrame(index=[f"g{i}" for i in range(30)])))
    np.testing.assert_allclose(res.matrices["log2fc"], ref.matrices["log2fc"], rtol=1e-12)


def test_counts_layer_is_preferred():
    a = _adata()
    a.layers["counts"] = a.X.copy()
    a.X = np.log1p(a.X.astype(float))  # normalised values in X must not be used
    res = deseq(a)
    assert np.isfinite(res.matrices["log2fc"]).any()
