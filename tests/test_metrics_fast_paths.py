"""The vectorised fast paths of simpert.metrics against plain, independent computations.

DE metrics work on the significant genes only and on sorted score rows; top-n masks use
partitions; E-distances visit cells in blocks; the classifier of cell label accuracy is
fitted once per score() call. Each is checked here against a direct implementation
(scikit-learn, scipy, Python loops) on inputs with ties, missing rows, shuffled tables
and excluded target genes.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

import simpert.metrics as sm
from simpert.metrics import CellSet, MetricInput, de_table, get, score
from simpert.metrics import _pereggrn, _stats
from simpert.metrics._edistance import edistances
from simpert.predict._types import Predictions, Split

from _metrics_data import nb_screen, observed, profile_prediction


def _tables(seed, P=7, G=40, shuffle=True):
    """Two tidy DE tables with quantised LFC (ties), missing rows and a shuffled row order."""
    rng = np.random.default_rng(seed)
    perts = [f"p{i}" for i in range(P)]
    genes = [f"g{j:02d}" for j in range(G)]

    def one(s):
        r = np.random.default_rng(s)
        df = pd.DataFrame({"perturbation": np.repeat(perts, G), "gene": np.tile(genes, P),
                           "log2fc": np.round(r.normal(size=P * G) * 2) / 2,
                           "padj": np.round(r.beta(0.4, 1.5, size=P * G) * 40) / 40})
        df = df.sample(frac=0.85, random_state=s)  # missing rows, shuffled order
        return df if shuffle else df.sort_index()

    targets = rng.choice(G, P, replace=False)
    return one(seed + 1), one(seed + 2), perts, genes, targets


def _input(real_t, pred_t, perts, genes, targets, target):
    z = np.zeros((len(perts), len(genes)))
    return MetricInput(pred=z, real=z, pred_control=z[0], real_control=z[0], perturbations=tuple(perts),
                       genes=tuple(genes), targets=targets, de_real=de_table(real_t, perts, genes),
                       de_pred=de_table(pred_t, perts, genes), target=target)


def _rows(df, p, genes):
    sub = df[df["perturbation"] == p]
    return sub.set_index("gene").reindex(genes), sub


def _ranked_sig(sub, fdr, drop):
    """Significant genes of one perturbation by decreasing |LFC|, ties in table order."""
    s = sub[(sub["padj"].astype(np.float32) < np.float32(fdr)) & (sub["gene"] != drop)]
    key = -np.abs(s["log2fc"].to_numpy(np.float32))
    return list(s["gene"].to_numpy()[np.argsort(key, kind="stable")])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("target", ["include", "exclude"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_de_metrics_against_direct_computation(seed, target, shuffle):
    real_t, pred_t, perts, genes, targets = _tables(seed, shuffle=shuffle)
    if seed == 2:  # edges of the AUCs: exactly one real negative (p0), exactly one positive (p1)
        real_t = real_t.copy()
        for p, sig in (("p0", 0.0), ("p1", 0.5)):
            rows = np.flatnonzero(real_t["perturbation"].to_numpy() == p)
            real_t.iloc[rows, real_t.columns.get_loc("padj")] = sig
            real_t.iloc[rows[len(rows) // 2], real_t.columns.get_loc("padj")] = 0.5 - sig
    inp = _input(real_t, pred_t, perts, genes, targets, target)
    assert (inp.de_real.order is None) == (not shuffle)
    fdr = 0.05
    got = {name: get(name).fn(inp) for name in
           ["overlap_at_N", "overlap_at_50", "precision_at_N", "de_direction_match",
            "de_spearman_lfc_sig", "de_sig_genes_recall", "pr_auc", "roc_auc"]}
    got["overlap_at_3"] = sm._de_metrics.overlap_at(inp, 3, "overlap")
    got["precision_at_3"] = sm._de_metrics.overlap_at(inp, 3, "precision")
    for i, p in enumerate(perts):
        drop = genes[targets[i]] if target == "exclude" else None
        rr, rsub = _rows(real_t, p, genes)
        pr, psub = _rows(pred_t, p, genes)
        R, Q = _ranked_sig(rsub, fdr, drop), _ranked_sig(psub, fdr, drop)
        for name, k, n in [("overlap_at_N", None, len(R)), ("overlap_at_3", 3, len(R)),
                           ("precision_at_N", None, len(Q)), ("precision_at_3", 3, len(Q))]:
            kk = n if k is None else min(k, n)
            want = len(set(R[:kk]) & set(Q[:kk])) / kk if kk else 0.0
            assert got[name][i] == pytest.approx(want, abs=1e-12), (name, p)
        assert got["overlap_at_50"][i] == pytest.approx(got["overlap_at_N"][i] if len(R) <= 50 else np.nan)
        if not R:
            assert np.isnan(got["de_sig_genes_recall"][i])
            continue
        assert got["de_sig_genes_recall"][i] == pytest.approx(len(set(R) & set(Q)) / len(R))
        in_pred = [g for g in R if g in set(psub["gene"])]
        same = np.sign(rr.loc[in_pred, "log2fc"].astype(np.float32)) == np.sign(pr.loc[in_pred, "log2fc"].astype(np.float32))
        want = same.mean() if in_pred else np.nan
        np.testing.assert_allclose(got["de_direction_match"][i], want, atol=1e-12)
        x = rr.loc[R, "log2fc"].to_numpy(float)
        y = pr.loc[R, "log2fc"].fillna(0.0).to_numpy(float)
        want = spearmanr(x, y).statistic if len(R) >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
        np.testing.assert_allclose(got["de_spearman_lfc_sig"][i], want, atol=1e-12)
        scored = [g for g in genes if g in set(rsub["gene"]) and g != drop]
        labels = np.isin(scored, R)
        q = pr.loc[scored, "padj"].fillna(1.0).to_numpy(np.float32)
        s = (-np.log10(np.clip(q, np.float32(1e-10), np.float32(1.0)))).astype(np.float32)
        if labels.all() or not labels.any():
            assert np.isnan(got["pr_auc"][i]) and np.isnan(got["roc_auc"][i])
        else:
            assert got["pr_auc"][i] == pytest.approx(average_precision_score(labels, s), abs=1e-12)
            assert got["roc_auc"][i] == pytest.approx(roc_auc_score(labels, s), abs=1e-12)


def test_de_table_duplicate_rows_keep_the_last():
    df = pd.DataFrame({"perturbation": ["a", "a", "a"], "gene": ["x", "y", "x"],
                       "log2fc": [1.0, 2.0, 3.0], "padj": [0.01, 0.02, 0.03]})
    t = de_table(df, ["a"], ["x", "y"])
    assert t.lfc[0, 0] == 3.0 and t.fdr[0, 0] == np.float32(0.03)
    assert t.order is not None and t.order[0, 0] == 2 and t.order[0, 1] == 1


def test_de_table_polars_matches_pandas():
    pl = pytest.importorskip("polars")
    real_t, _, perts, genes, _ = _tables(5)
    a = de_table(real_t, perts, genes)
    b = de_table(pl.from_pandas(real_t.reset_index(drop=True)), perts, genes)
    for f in ("lfc", "fdr", "present"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    np.testing.assert_array_equal(a.order, b.order)
    # grouped perturbation column (run-length path) with an unknown perturbation
    g = pl.DataFrame({"target": ["a"] * 3 + ["zz"] * 3 + ["b"] * 3, "feature": ["x", "y", "w"] * 3,
                      "log2_fold_change": np.arange(9.0), "fdr": np.full(9, 0.01)})
    t = de_table(g, ["a", "b"], ["x", "y"])
    np.testing.assert_array_equal(t.lfc, [[0.0, 1.0], [6.0, 7.0]])
    assert t.order is None


@pytest.mark.parametrize("seed", range(20))
def test_top_masks_equal_sorting(seed):
    rng = np.random.default_rng(seed)
    P, G = rng.integers(1, 6), rng.integers(1, 30)
    n = int(rng.integers(1, G + 3))
    a = np.round(rng.normal(size=(P, G)) * rng.choice([1, 3]))  # many ties
    mask = rng.random((P, G)) < 0.8 if seed % 2 else None
    want = np.nan_to_num(rankdata(-a if mask is None else np.where(mask, -a, np.inf), axis=1), nan=np.inf) <= n
    if mask is not None:
        want &= mask
    np.testing.assert_array_equal(_stats.top_by_rank(a, n, mask), want)
    idx = np.argsort(a, axis=1, kind="stable")[:, -min(n, G):]
    want = np.zeros(a.shape, bool)
    np.put_along_axis(want, idx, True, axis=1)
    np.testing.assert_array_equal(_stats.top_k_mask(a, n), want)


def _edistance_direct(X, group, P):
    C = X[group == -1]
    out = np.full(P, np.nan)
    for p in range(P):
        xp = X[group == p]
        if len(xp):
            out[p] = 2 * cdist(xp, C).mean() - cdist(xp, xp).mean() - cdist(C, C).mean()
    return out


@pytest.mark.parametrize("chunk", [3, 7, 1024])
def test_edistances_blocks_equal_direct(chunk):
    rng = np.random.default_rng(chunk)
    sizes = [1, 5, 12, 0, 4]
    group = np.concatenate([np.full(s, p) for p, s in enumerate(sizes)] + [np.full(9, -1), np.full(3, -2)])
    rng.shuffle(group)
    X = rng.normal(size=(group.size, 6)) + (group[:, None] == 2)
    got = edistances(CellSet(X=X, group=group), len(sizes), chunk_size=chunk)
    np.testing.assert_allclose(got, _edistance_direct(X, group, len(sizes)), rtol=1e-10, atol=1e-12)


def test_stats_do_not_warn_on_constant_or_empty_rows():
    x = np.ones((3, 6))
    y = np.arange(18.0).reshape(3, 6)
    m = np.zeros((3, 6), bool)
    m[0, :2] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(_stats.row_pearson(x, y)).all()
        assert np.isnan(_stats.row_pearson(y, y, m)[1:]).all()
        assert np.isnan(_stats.row_mean(y, m)[1:]).all()
        assert np.isnan(_stats.row_spearman(x, y)).all()
        assert np.isnan(_stats.row_cosine(np.zeros((3, 6)), y)).all()
        assert np.isnan(_stats.row_r2(x, x, np.zeros((3, 6)))).all()
    np.testing.assert_allclose(_stats.row_pearson(y, 2 * y + 1), 1.0)


@pytest.fixture(scope="module")
def screen():
    adata, _, _ = nb_screen(n_genes=30, n_perts=14, cells=12, n_ctrl=40, seed=4, named_by_target=False, shift=0.8)
    perts = [str(p) for p in adata.obs["perturbation"].cat.categories[1:]]
    split = Split(train=tuple(perts[:8]), test=tuple(perts[8:]))
    return adata, split


def test_systematic_variation_ignores_the_reference_option(screen):
    adata, split = screen
    prof = observed(adata)
    rng = np.random.default_rng(0)
    pm = prof.loc[list(split.test)].to_numpy() + rng.normal(scale=0.1, size=(len(split.test), adata.n_vars))
    pred = profile_prediction("m", adata, pm, split.test)
    r0 = prof.loc["control"].to_numpy()
    shift = prof.loc[list(split.train)].to_numpy().mean(axis=0) - r0
    delta = prof.loc[list(split.test)].to_numpy() - r0
    want = delta @ shift / (np.linalg.norm(delta, axis=1) * np.linalg.norm(shift))
    for ref in (None, "control", "centroid", rng.normal(size=adata.n_vars)):
        got = score(Predictions([pred]), adata, split, metrics="systematic_variation", reference=ref)
        np.testing.assert_allclose(got["value"].to_numpy(), want, rtol=1e-10)
    with pytest.raises(ValueError, match="training perturbations"):
        score(Predictions([pred]), adata, Split(train=(), test=split.test), metrics="systematic_variation")


def test_cell_label_classifier_is_fitted_once_per_score_call(screen, monkeypatch):
    adata, split = screen
    prof = observed(adata)
    rng = np.random.default_rng(1)
    real = prof.loc[list(split.test)].to_numpy()
    preds = Predictions([profile_prediction(f"m{i}", adata, real + rng.normal(scale=s, size=real.shape), split.test)
                         for i, s in enumerate([0.0, 0.3, 1.0])])
    calls = []
    fit = _pereggrn._label_classifier
    monkeypatch.setattr(_pereggrn, "_label_classifier", lambda *a: calls.append(1) or fit(*a))
    out = score(preds, adata, split, metrics="pereggrn_cell_label_accuracy")
    assert len(calls) == 1
    # the same values as fitting afresh (same seed) for each prediction
    train = prof.loc[list(split.train)].to_numpy()
    clf = fit(train, None, sm.DEFAULT_OPTIONS["n_clusters"], sm.DEFAULT_OPTIONS["seed"])
    for name, pred in preds.items():
        pm = pred.profiles.loc[list(split.test)].to_numpy()
        want = (clf.predict(real) == clf.predict(pm)).astype(float)
        np.testing.assert_array_equal(out[out["predictor"] == name]["value"].to_numpy(), want)
    assert out[out["predictor"] == "m0"]["value"].eq(1.0).all()


def test_observed_edistances_are_computed_once_per_score_call(screen, monkeypatch):
    adata, split = screen
    from simpert.metrics import _edistance

    other, _, _ = nb_screen(n_genes=30, n_perts=14, cells=12, n_ctrl=40, seed=4, named_by_target=False,
                            shift=0.8, noise_seed=5)
    from _metrics_data import prediction_from_cells

    preds = Predictions([dataclasses.replace(prediction_from_cells("a", other, split.test), name="a"),
                         dataclasses.replace(prediction_from_cells("b", adata, split.test), name="b")])
    calls = []
    real_fn = _edistance._edistances
    monkeypatch.setattr(_edistance, "_edistances", lambda *a, **k: calls.append(1) or real_fn(*a, **k))
    out = score(preds, adata, split, metrics="pearson_edistance")
    assert len(calls) == 3  # observed once, each prediction once
    assert out[out["predictor"] == "b"]["value"].eq(1.0).all()  # the observed cells themselves
