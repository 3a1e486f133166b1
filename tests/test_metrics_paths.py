"""Paths of the metrics that the other tests reach only partly: the BLAS route of the mean
pairwise distance, dense group moments, ``evaluate`` with a training set and with cell
resampling. Each is checked against an independent computation."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import cdist

import simpert as spt
from simpert._profiles import group_profiles
from simpert.metrics import evaluate
from simpert.metrics._edistance import mean_pairwise_distance
from simpert.metrics._systema import _group_moments
from simpert.predict import Prediction, Predictions, Split


def test_mean_pairwise_distance_blas_route_equals_cdist():
    """Above 5e7 operations the distance goes through |a|^2 + |b|^2 - 2ab by blocks of rows."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(330, 480))
    Y = rng.normal(loc=0.3, size=(320, 480))
    assert X.shape[0] * Y.shape[0] * X.shape[1] > 5e7  # the BLAS route, not the C loop
    # the error of the expanded square is ~1e-13 of d^2 ~ 1e3: 1e-9 relative is far above it
    np.testing.assert_allclose(mean_pairwise_distance(X, Y, chunk_size=100), cdist(X, Y).mean(), rtol=1e-9)
    Z = rng.normal(size=(400, 400))
    # one set against itself: the diagonal is exactly 0 and counted in the mean
    np.testing.assert_allclose(mean_pairwise_distance(sp.csr_matrix(Z), chunk_size=64), cdist(Z, Z).mean(),
                               rtol=1e-9)
    # chunks that do not divide the rows give the same mean
    assert mean_pairwise_distance(X, Y, chunk_size=97) == pytest.approx(cdist(X, Y).mean(), rel=1e-9)


def test_group_moments_dense_and_sparse_equal_pandas():
    rng = np.random.default_rng(4)
    X = rng.poisson(2.0, size=(60, 7)).astype(float)
    group = rng.integers(-1, 4, size=60)  # -1: ignored
    frame = pd.DataFrame(X).assign(g=group)
    frame = frame[frame.g >= 0]
    want_mean = frame.groupby("g").mean().to_numpy()
    want_var = frame.groupby("g").var(ddof=1).to_numpy()
    for M in (X, sp.csr_matrix(X)):
        mean, var, n = _group_moments(M, group, 4)
        np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
        np.testing.assert_allclose(var, want_var, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(n, np.bincount(group[group >= 0], minlength=4))


def _cells(lab, X, genes, key="gene"):
    obs = pd.DataFrame({key: lab}, index=[f"c{i}" for i in range(len(lab))])
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))


@pytest.fixture(scope="module")
def screen():
    return spt.sim.screen(n_genes=60, n_perturbations=8, n_control_cells=120, cells_per_perturbation=30,
                          p_effect=0.3, effect_size=1.0, rng=5)


def test_evaluate_with_train_equals_the_internal_split(screen):
    """A training set given to evaluate feeds Systema's centroid accuracy exactly as a split
    whose training perturbations are those cells does in the internal path."""
    perts = [c for c in screen.obs["perturbation"].cat.categories if c != "control"]
    train_p, test_p = perts[:4], perts[4:]
    lab = screen.obs["perturbation"].astype(str).to_numpy()
    dup = spt.sim.redraw(screen, rng=6)
    dlab = dup.obs["perturbation"].astype(str).to_numpy()
    genes = np.asarray(screen.var_names, dtype=str)
    keep = np.isin(lab, test_p + ["control"])
    real = _cells(lab[keep], sp.csr_matrix(screen.X[np.flatnonzero(keep)], dtype=np.float64), genes)
    tr = np.isin(lab, train_p + ["control"])
    train = _cells(lab[tr], sp.csr_matrix(screen.X[np.flatnonzero(tr)], dtype=np.float64), genes)
    pk = np.isin(dlab, test_p + ["control"])
    pred = _cells(dlab[pk], sp.csr_matrix(dup.X[np.flatnonzero(pk)], dtype=np.float64), genes)
    got = evaluate(pred, real, perturbation_key="gene", metrics=["systema_centroid_accuracy"], train=train,
                   n_boot=0, anchors=False)
    assert got.errors == []
    ours = got.per_perturbation.set_index("perturbation")["value"]
    # the internal path: the same cells, the training perturbations named by the split
    prof = group_profiles(dup)
    p = Prediction(name="m", profiles=prof.loc[test_p], control=prof.loc["control"], cells=dup)
    table = spt.metrics.score(Predictions({"m": p}), screen, Split(train=tuple(train_p), test=tuple(test_p)),
                              metrics=["systema_centroid_accuracy", "mse"])
    assert table.index.equals(pd.RangeIndex(len(table)))  # one tidy table, not stacked pieces
    want = table[table["metric"] == "systema_centroid_accuracy"].set_index("perturbation")["value"]
    np.testing.assert_allclose(ours.loc[test_p].to_numpy(), want.loc[test_p].to_numpy(), rtol=1e-12)
    # without the training set the metric cannot run and says so
    none = evaluate(pred, real, perturbation_key="gene", metrics=["systema_centroid_accuracy"], n_boot=0,
                    anchors=False)
    assert [e["metric"] for e in none.errors] == ["systema_centroid_accuracy"]
    # with the anchors, each model that fails says so once: the prediction, the baseline and
    # the replicate (its first split half)
    anchored = evaluate(pred, real, perturbation_key="gene", metrics=["systema_centroid_accuracy", "mse"],
                        n_boot=0, n_splits=1)
    assert sorted(e["model"] for e in anchored.errors if e["metric"] == "systema_centroid_accuracy") == \
        ["baseline", "prediction", "replicate"]


def test_cell_bootstrap_interval_is_the_spread_of_resampled_cell_means():
    """One perturbation, one gene, log-normalised values, a prediction of 0: the MSE of a
    resample is (mean of the resampled cells)^2, whose quantiles a plain numpy bootstrap gives."""
    rng = np.random.default_rng(8)
    vals = rng.gamma(2.0, 0.5, size=25)
    ctrl = rng.gamma(2.0, 0.5, size=25)
    lab = np.array(["p1"] * 25 + ["control"] * 25)
    X = np.concatenate([vals, ctrl])[:, None] + 0.001  # decimals: log-normalised input
    real = _cells(lab, X, ["g1"])
    pred = _cells(np.array(["p1", "control"]), np.array([[0.0], [float(ctrl.mean()) + 0.001]]), ["g1"])
    res = evaluate(pred, real, perturbation_key="gene", metrics=["mse"], cell_bootstrap=2000, n_boot=0,
                   anchors=False, rng=1, input_type="lognorm")
    row = res.aggregate.loc["mse"]
    assert row["value"] == pytest.approx((vals.mean() + 0.001) ** 2, rel=1e-12)
    g = np.random.default_rng(123)  # another stream: agreement within Monte Carlo error
    boots = (g.choice(vals + 0.001, size=(20000, 25), replace=True).mean(axis=1)) ** 2
    lo, hi = np.quantile(boots, [0.025, 0.975])
    # quantiles of 2,000 resamples: SE about 2% of the interval's width
    width = hi - lo
    assert abs(row["ci_low"] - lo) < 0.08 * width and abs(row["ci_high"] - hi) < 0.08 * width
    assert row["ci_method"] == "perturbations and cells"
    # the same seed, the same interval; cell resampling widens nothing when cells are identical
    again = evaluate(pred, real, perturbation_key="gene", metrics=["mse"], cell_bootstrap=2000, n_boot=0,
                     anchors=False, rng=1, input_type="lognorm").aggregate.loc["mse"]
    assert (again["ci_low"], again["ci_high"]) == (row["ci_low"], row["ci_high"])
    flat = _cells(lab, np.full((50, 1), 0.5), ["g1"])
    f = evaluate(pred, flat, perturbation_key="gene", metrics=["mse"], cell_bootstrap=50, n_boot=0,
                 anchors=False, rng=1, input_type="lognorm").aggregate.loc["mse"]
    assert f["ci_low"] == pytest.approx(0.25, rel=1e-12) and f["ci_high"] == pytest.approx(0.25, rel=1e-12)


def test_gears_top_de_with_a_gene_mask_equals_scipy_welch_ranking():
    """Top-n non-dropout genes by |Welch t| (scipy's ttest_ind), among the allowed genes only."""
    from scipy.stats import ttest_ind

    from simpert.metrics._input import CellSet
    from simpert.metrics._systema import gears_top_de

    rng = np.random.default_rng(9)
    P, G, n = 3, 30, 5
    ctrl = rng.gamma(2.0, 1.0, size=(40, G))
    pert = [rng.gamma(2.0, 1.0, size=(25, G)) * rng.uniform(0.5, 2.0, size=G) for _ in range(P)]
    pert[1][:, 4] = 0.0  # a dropout: never among the top genes
    X = np.vstack([ctrl] + pert)
    group = np.concatenate([np.full(40, -1)] + [np.full(25, p) for p in range(P)])
    mask = rng.random((P, G)) > 0.3
    got = gears_top_de(CellSet(X=sp.csr_matrix(X), group=group), P, n=n, gene_mask=mask)
    for p in range(P):
        t = ttest_ind(pert[p], ctrl, equal_var=False).statistic
        allowed = [g for g in np.argsort(-np.abs(t), kind="stable") if mask[p, g] and pert[p][:, g].any()]
        assert set(np.flatnonzero(got[p])) == set(allowed[:n]), p
    assert not got[1, 4] and got.sum() == P * n
    # the same from dense cells
    np.testing.assert_array_equal(gears_top_de(CellSet(X=X, group=group), P, n=n, gene_mask=mask), got)


def test_row_r2_with_a_constant_truth_follows_sklearn_force_finite():
    """Rows whose truth does not vary: 1 for a perfect prediction, 0 otherwise, weighted or
    not (sklearn's r2_score, force_finite=True), next to ordinary rows."""
    from sklearn.metrics import r2_score

    from simpert.metrics._stats import row_r2

    rng = np.random.default_rng(0)
    y = np.vstack([np.full(6, 2.0), np.full(6, 2.0), rng.normal(size=6), np.full(6, -1.0)])
    yhat = np.vstack([np.full(6, 2.0), y[1] + rng.normal(size=6), y[2] + 0.3 * rng.normal(size=6),
                      np.full(6, -1.0)])
    w = rng.uniform(0.5, 2.0, size=(4, 6))
    for weights in (None, w):
        got = row_r2(y, yhat, weights)
        want = [r2_score(y[i], yhat[i], sample_weight=None if weights is None else w[i]) for i in range(4)]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert list(row_r2(y, yhat)[[0, 1, 3]]) == [1.0, 0.0, 1.0]


def test_group_moments_ignore_rows_outside_the_groups():
    """Rows whose group is negative or n_groups or more are left out (documented), against
    pandas on the kept rows."""
    from simpert.metrics._systema import _group_moments

    rng = np.random.default_rng(1)
    X = rng.poisson(3.0, size=(12, 4)).astype(float)
    group = np.array([0, 1, 2, 0, 1, 2, 3, -1, 0, 1, 2, 3])
    out = _group_moments(X, group, 3)
    keep = (group >= 0) & (group < 3)
    df = pd.DataFrame(X[keep]).groupby(group[keep])
    np.testing.assert_allclose(out[0], df.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(out[1], df.var(ddof=1).to_numpy(), rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(out[2]).ravel(), [3, 3, 3])


def test_a_metric_may_need_every_input_and_nothing_else():
    from simpert.metrics import Metric
    from simpert.metrics._registry import NEEDS

    every = Metric("needs_all", lambda inp: np.zeros(inp.n_perturbations), True, 1.0, frozenset(NEEDS), "d", "s")
    assert every.needs == NEEDS == frozenset({"profiles", "cells", "real_cells", "de", "train"})
    with pytest.raises(ValueError, match="parameter 'needs'"):
        Metric("needs_more", lambda inp: None, True, 1.0, frozenset(NEEDS | {"network"}), "d", "s")


@pytest.mark.parametrize("target", ["exclude", "pairwise"])
def test_targets_at_gene_zero_only_are_still_dropped(target):
    """Every known target is the first gene: the profile metrics still leave it out (MSE over
    the other genes, computed directly)."""
    from simpert.metrics import MetricInput, get
    from simpert.metrics import DEFAULT_OPTIONS

    rng = np.random.default_rng(2)
    P, G = 3, 5
    real, pred = rng.normal(size=(P, G)), rng.normal(size=(P, G))
    z = np.zeros(G)
    inp = MetricInput(pred=pred, real=real, pred_control=z, real_control=z, perturbations=("a", "b", "c"),
                      genes=tuple("vwxyz"), targets=np.array([0, 0, -1]), target=target,
                      options=dict(DEFAULT_OPTIONS))
    mask = inp.gene_mask
    assert mask is not None and not mask[0, 0] and not mask[1, 0] and mask[2].all()
    got = get("mse")(inp)
    want = [np.mean((pred[0, 1:] - real[0, 1:]) ** 2), np.mean((pred[1, 1:] - real[1, 1:]) ** 2),
            np.mean((pred[2] - real[2]) ** 2)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_group_pearson_of_identical_values_is_exactly_one():
    """A group whose two vectors are equal correlates at exactly 1, including values for which
    the sum of squares over its rounded square root squared gives 1 + 2^-52 (found by search:
    seed 3, seven normals); never above 1."""
    from simpert.metrics._de_metrics import _group_pearson

    x = np.random.default_rng(3).normal(size=7)
    g0 = np.zeros(7, int)
    xc = x - np.bincount(g0, weights=x)[0] / 7
    ss = np.bincount(g0, weights=xc * xc)[0]
    assert ss / np.sqrt(ss) ** 2 > 1.0  # the rounding this guards against
    y = np.random.default_rng(4).normal(size=5)
    r = _group_pearson(np.r_[np.zeros(7, int), np.ones(5, int)], np.r_[x, y], np.r_[x, -y], 2)
    assert r[0] == 1.0  # clipped from 1 + 2^-52
    assert -1.0 <= r[1] <= -1.0 + 1e-15
