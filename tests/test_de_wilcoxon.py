"""The Wilcoxon route reproduces cell-eval's own DE table (pdex, run by cell-eval)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from simpert.de._wilcoxon import WILCOXON_COLUMNS, bh_rows, wilcoxon

ad = pytest.importorskip("anndata")


def _screen(rng, P=12, G=150, n_ctrl=150, n_pert=(20, 60)):
    """Poisson-lognormal cells: sparse effects, unequal cell counts, many ties at zero."""
    sizes = rng.integers(*n_pert, size=P)
    labels = ["control"] * n_ctrl + [f"p{i:02d}" for i in range(P) for _ in range(sizes[i])]
    gi = np.concatenate([np.zeros(n_ctrl, int), np.repeat(np.arange(1, P + 1), sizes)])
    mu = rng.gamma(0.6, 2.0, G)
    eff = np.exp(rng.normal(0, 0.7, (P + 1, G)) * (rng.random((P + 1, G)) < 0.15))
    eff[0] = 1.0
    eff[1, :3] = 0.0  # genes switched off in one perturbation (one-sided zeros)
    lib = rng.lognormal(0.0, 0.3, gi.size)
    counts = rng.poisson(mu[None, :] * eff[gi] * lib[:, None])
    counts[:, 5] = 0  # a gene unexpressed everywhere
    obs = pd.DataFrame({"perturbation": pd.Categorical(labels)}, index=[f"c{i}" for i in range(gi.size)])
    var = pd.DataFrame(index=[f"g{i:03d}" for i in range(G)])
    return ad.AnnData(sp.csr_matrix(counts.astype(np.int64)), obs=obs, var=var)


def _cell_eval_de(adata):
    """cell-eval's DE exactly as its evaluator builds it (normalisation check + pdex)."""
    from cell_eval._evaluator import _build_anndata_pair, _load_or_build_de

    pair = _build_anndata_pair(adata, None, control_pert="control", pert_col="perturbation")
    return _load_or_build_de(mode="real", anndata_pair=pair, num_threads=1).to_pandas()


def _lognorm64(adata):
    X = sp.csr_matrix(adata.X, dtype=np.float64)
    tot = np.asarray(X.sum(axis=1)).ravel()
    scale = np.divide(1e4, tot, out=np.zeros_like(tot), where=tot > 0)
    X = sp.csr_matrix(X.multiply(scale[:, None]))
    X.data = np.log1p(X.data)
    out = adata.copy()
    out.X = X
    return out


def _merge(ours, theirs):
    m = ours.merge(theirs, on=["target", "feature"], suffixes=("", "_ce"), validate="one_to_one")
    assert len(m) == len(ours) == len(theirs)
    return m


def _rel(a, b):
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    a, b = np.where(both_inf, 0, a), np.where(both_inf, 0, b)
    return np.abs(a - b) / np.maximum(np.abs(b), 1e-300)


def test_equals_cell_eval_de_on_float64_lognormalised_cells():
    rng = np.random.default_rng(0)
    adata = _lognorm64(_screen(rng))
    ours = wilcoxon(adata, control="control", groupby="perturbation")
    theirs = _cell_eval_de(adata.copy())
    m = _merge(ours, theirs)
    assert np.max(_rel(m.p_value.to_numpy(), m.p_value_ce.to_numpy())) < 1e-8
    assert np.max(_rel(m.fdr.to_numpy(), m.fdr_ce.to_numpy())) < 1e-8
    assert np.array_equal(m.statistic.to_numpy(), m.statistic_ce.to_numpy())
    lfc, lfc_ce = m.log2_fold_change.to_numpy(), m.log2_fold_change_ce.to_numpy()
    assert np.array_equal(np.isinf(lfc), np.isinf(lfc_ce)) and np.isinf(lfc).any()
    assert np.max(_rel(lfc, lfc_ce)[np.isfinite(lfc)] * (np.abs(lfc_ce[np.isfinite(lfc)]) > 1e-6)) < 1e-8
    for col in ("target_mean", "ref_mean", "percent_change"):
        assert np.allclose(m[col], m[f"{col}_ce"], rtol=1e-9, atol=1e-12, equal_nan=True)
    assert (m.target_membership == m.target_membership_ce).all()
    assert (m.ref_membership == m.ref_membership_ce).all()
    assert m.p_value.min() < 1e-10  # the comparison covers strong signals too
    # gene g005 is zero everywhere: p = 1, LFC = 0
    z = ours[ours.gene == "g005"]
    assert (z.pvalue == 1).all() and (z.log2fc == 0).all()


def test_raw_counts_follow_cell_evals_normalisation():
    """Integer input: both normalise to the median cell total and take log1p.

    cell-eval (scanpy) does it in float32, simpert in float64, so values that tie in one
    precision can differ in the other; p-values still agree closely, LFCs to float32 accuracy.
    """
    rng = np.random.default_rng(1)
    adata = _screen(rng, P=6, G=120)
    ours = wilcoxon(adata)
    theirs = _cell_eval_de(adata.copy())
    m = _merge(ours, theirs)
    assert np.median(_rel(m.p_value.to_numpy(), m.p_value_ce.to_numpy())) < 1e-8
    assert np.max(np.abs(np.log10(m.p_value) - np.log10(m.p_value_ce))) < 0.05
    fin = np.isfinite(m.log2_fold_change_ce.to_numpy())
    assert np.allclose(m.log2_fold_change[fin], m.log2_fold_change_ce[fin], atol=1e-4)


def test_matches_scipy_mannwhitneyu_and_bh():
    rng = np.random.default_rng(2)
    adata = _lognorm64(_screen(rng, P=3, G=40, n_ctrl=60, n_pert=(15, 30)))
    out = wilcoxon(adata)
    X = adata.X.toarray()
    lab = adata.obs.perturbation.to_numpy()
    ctrl = X[lab == "control"]
    for p in ("p00", "p02"):
        pert = X[lab == p]
        res = stats.mannwhitneyu(pert, ctrl, method="asymptotic", use_continuity=True, axis=0)
        sub = out[out.perturbation == p]
        expect_p = np.where(np.all(np.concatenate([pert, ctrl]) == 0, axis=0), 1.0, res.pvalue)
        np.testing.assert_allclose(sub.pvalue, expect_p, rtol=1e-9)
        np.testing.assert_array_equal(sub.statistic, res.statistic)
        np.testing.assert_allclose(sub.padj, stats.false_discovery_control(expect_p), rtol=1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            lfc = np.log2(np.expm1(pert.mean(0)) / np.expm1(ctrl.mean(0)))
        fin = np.isfinite(lfc)
        np.testing.assert_allclose(sub.log2fc.to_numpy()[fin], lfc[fin], rtol=1e-9, atol=1e-12)


def test_output_layout_and_options():
    rng = np.random.default_rng(3)
    adata = _lognorm64(_screen(rng, P=4, G=30))
    out = wilcoxon(adata, fdr=0.1)
    assert list(out.columns) == WILCOXON_COLUMNS
    assert list(out.perturbation.unique()) == ["p00", "p01", "p02", "p03"]
    assert list(out.gene[:30]) == list(adata.var_names)
    assert (out.significant == (out.padj < 0.1)).all()
    # the normalisation total changes the fold changes; the p-values only through float
    # rounding of values that tie exactly (e.g. 1 of 1000 and 2 of 2000 counts), which the
    # route, like cell-eval, takes as the floats compare
    raw = _screen(np.random.default_rng(3), P=4, G=30)
    a = wilcoxon(raw, target_sum=1e4)
    b = wilcoxon(raw, target_sum=2e4)
    rel = np.abs(a.pvalue - b.pvalue) / b.pvalue
    assert np.mean(rel == 0) > 0.8 and rel.max() < 0.05
    assert not np.allclose(a.log2fc[np.isfinite(a.log2fc)], b.log2fc[np.isfinite(b.log2fc)])
    # relabelled control and an ignored empty label
    adata.obs["arm"] = adata.obs.perturbation.astype(str).replace({"control": "NT", "p03": ""})
    c = wilcoxon(adata, control="NT", groupby="arm")
    assert set(c.perturbation) == {"p00", "p01", "p02"}
    np.testing.assert_allclose(c.pvalue.to_numpy(), out.pvalue.to_numpy()[: 3 * 30], rtol=1e-12)


def test_bh_rows_matches_scipy():
    rng = np.random.default_rng(4)
    p = rng.random((5, 200)) ** 3
    p[0, :10] = p[0, 10]  # ties
    expect = np.vstack([stats.false_discovery_control(row) for row in p])
    np.testing.assert_allclose(bh_rows(p), expect, rtol=1e-14)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"control": "nope"}, "control"),
        ({"groupby": "nope"}, "groupby"),
        ({"fdr": 1.5}, "fdr"),
        ({"normalize": "yes"}, "normalize"),
        ({"target_sum": 0.0}, "target_sum"),
        ({"layer": "counts"}, "layer"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, name):
    adata = _screen(np.random.default_rng(5), P=2, G=10)
    with pytest.raises((ValueError, TypeError), match=f"parameter '{name}' must be"):
        wilcoxon(adata, **kwargs)


def test_negative_values_and_single_group_are_rejected():
    adata = _lognorm64(_screen(np.random.default_rng(6), P=2, G=10))
    bad = adata.copy()
    bad.X = bad.X.toarray() - 1.0
    with pytest.raises(ValueError, match="parameter 'adata' must be"):
        wilcoxon(bad, normalize=False)
    only = adata[adata.obs.perturbation == "control"].copy()
    with pytest.raises(ValueError, match="must be a column with at least one group"):
        wilcoxon(only)
