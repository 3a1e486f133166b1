"""PEREGGRN, Systema, Mejia/Miller, PerturBench and Kernfeld definitions against independent
computations (loops over perturbations with scipy / scikit-learn / scanpy)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import pearsonr, rankdata, spearmanr
from sklearn.decomposition import PCA
from sklearn.metrics import r2_score

import simpert.metrics as sm
from simpert.metrics import MetricInput, cross_distances, get, score
from simpert.predict._types import Predictions, Split

from _metrics_data import nb_screen, observed, profile_prediction


def make_input(seed=0, P=7, G=30, N_train=9, target="include", reference="control", weights=None):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(P, G))
    pred = real + rng.normal(scale=0.8, size=(P, G))
    ctrl = rng.normal(size=G)
    pctrl = ctrl + rng.normal(scale=0.1, size=G)
    train = rng.normal(size=(N_train, G)) + 0.3
    targets = rng.choice(G, P, replace=False)
    targets[0] = -1  # one perturbation without a known target
    ref_r = ref_p = None
    if reference == "centroid":
        ref_r = ref_p = train.mean(axis=0)
    if target == "reveal":
        pred = pred.copy()
        rows = targets >= 0
        pred[np.flatnonzero(rows), targets[rows]] = real[np.flatnonzero(rows), targets[rows]]
    return MetricInput(pred=pred, real=real, pred_control=pctrl, real_control=ctrl,
                       perturbations=tuple(f"p{i}" for i in range(P)), genes=tuple(f"g{j}" for j in range(G)),
                       targets=targets, reference_real=ref_r, reference_pred=ref_p, train=train,
                       train_perturbations=tuple(f"t{i}" for i in range(N_train)), weights=weights,
                       target=target, options=dict(sm.DEFAULT_OPTIONS, top_n=8, n_de=6))


def keep_idx(inp, i):
    t = inp.targets[i]
    g = np.arange(inp.n_genes)
    return g[g != t] if (inp.excludes_target and t >= 0) else g


# ----------------------------------------------------------------------------- distances
@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("mode", ["none", "one", "pair"])
def test_cross_distances_brute_force(metric, mode):
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(6, 12)), rng.normal(size=(5, 12))
    at = rng.integers(-1, 12, size=6) if mode != "none" else None
    bt = rng.integers(-1, 12, size=5) if mode == "pair" else None
    if bt is not None:
        bt[0] = at[0]  # a shared target
    D = cross_distances(A, B, metric, a_targets=at, b_targets=bt, chunk_size=4)
    name = {"l1": "cityblock", "l2": "euclidean"}.get(metric, metric)
    for i in range(6):
        for j in range(5):
            drop = {t for t in ((at[i] if at is not None else -1), (bt[j] if bt is not None else -1)) if t >= 0}
            keep = [g for g in range(12) if g not in drop]
            ref = cdist(A[i:i + 1, keep], B[j:j + 1, keep], name)[0, 0]
            assert abs(D[i, j] - ref) < 1e-10


# ----------------------------------------------------------------------------- PEREGGRN
@pytest.mark.parametrize("target", ["include", "exclude", "reveal"])
def test_pereggrn_definitions(target):
    inp = make_input(target=target)
    o_all = inp.real - inp.real_control
    p_all = inp.pred - inp.real_control  # PEREGGRN: baseline_predicted = baseline_observed
    n = inp.option("top_n")
    vals = {k: get(k).fn(inp) for k in [
        "pereggrn_mse", "pereggrn_mae", "pereggrn_spearman", "pereggrn_pearson", "pereggrn_mse_top_n",
        "pereggrn_pearson_top_n", "pereggrn_overlap_top_n", "pereggrn_proportion_correct_direction"]}
    for i in range(inp.n_perturbations):
        k = keep_idx(inp, i)
        o, p = o_all[i, k], p_all[i, k]
        assert np.isclose(vals["pereggrn_mse"][i], np.linalg.norm(o - p) ** 2)
        assert np.isclose(vals["pereggrn_mae"][i], np.abs(o - p).mean())
        assert np.isclose(vals["pereggrn_spearman"][i], spearmanr(o, p)[0])
        assert np.isclose(vals["pereggrn_pearson"][i], pearsonr(o, p)[0])
        top = rankdata(-np.abs(o)) <= n
        assert np.isclose(vals["pereggrn_mse_top_n"][i], np.linalg.norm((o - p)[top]) ** 2)
        assert np.isclose(vals["pereggrn_pearson_top_n"][i], pearsonr(o[top], p[top])[0])
        topp = rankdata(-np.abs(p)) <= n
        assert np.isclose(vals["pereggrn_overlap_top_n"][i], (top & topp).sum() / n)
        assert np.isclose(vals["pereggrn_proportion_correct_direction"][i], np.mean(np.sign(o) == np.sign(p)))
    if target == "reveal":  # the revealed target gene has no error
        i = 1
        t = inp.targets[i]
        assert inp.pred[i, t] == inp.real[i, t]


@pytest.mark.parametrize("dense_limit", [2e7, 0])
def test_pereggrn_distance_in_pca_matches_sklearn(dense_limit, monkeypatch):
    """PCA fitted on the training cells (both the SVD and the covariance route)."""
    import dataclasses

    from simpert.metrics import CellSet
    from simpert.metrics import _pereggrn as pg

    inp = make_input(N_train=30, G=40)
    rng = np.random.default_rng(3)
    cells = rng.normal(size=(90, 40)) + rng.normal(size=40)
    train = np.arange(90) < 70  # 70 training cells, 20 test cells that must not enter the fit
    inp = dataclasses.replace(inp, real_cells=CellSet(X=cells, group=np.where(train, -2, 0), train=train))
    pca = PCA(n_components=20).fit(cells[train])
    ref = ((pca.transform(inp.real) - pca.transform(inp.pred)) ** 2).sum(axis=1)
    orig = pg.pca_components_cells
    monkeypatch.setattr(pg, "pca_components_cells", lambda X, n: orig(X, n, dense_limit=dense_limit))
    np.testing.assert_allclose(get("pereggrn_distance_in_pca").fn(inp), ref, rtol=1e-9)


def test_cell_label_accuracy_perfect_and_labels():
    inp = make_input(N_train=20)
    import dataclasses
    perfect = dataclasses.replace(inp, pred=inp.real.copy())
    assert np.all(get("pereggrn_cell_label_accuracy").fn(perfect) == 1.0)
    v = get("pereggrn_cell_label_accuracy").fn(inp)
    assert set(np.unique(v)) <= {0.0, 1.0}


# ----------------------------------------------------------------------------- Systema
@pytest.mark.parametrize("target", ["include", "exclude", "pairwise"])
def test_systema_definitions(target):
    inp = make_input(reference="centroid", target=target)
    mu = inp.train.mean(axis=0)
    cp = get("systema_pearson_delta").fn(inp)
    acc = get("systema_centroid_accuracy").fn(inp)
    sv = get("systematic_variation").fn(inp)
    N = inp.n_perturbations
    for i in range(N):
        k = keep_idx(inp, i)
        dr, dp = inp.real[i] - mu, inp.pred[i] - mu
        assert np.isclose(cp[i], pearsonr(dr[k], dp[k])[0])
        # centroid accuracy by brute force
        cnt = 0
        for q in range(N):
            if q == i:
                continue
            drop = set()
            if target in ("exclude", "pairwise") and inp.targets[i] >= 0:
                drop.add(inp.targets[i])
            if target == "pairwise" and inp.targets[q] >= 0:
                drop.add(inp.targets[q])
            kk = [g for g in range(inp.n_genes) if g not in drop]
            d_own = np.linalg.norm(inp.pred[i, kk] - inp.real[i, kk])
            d_q = np.linalg.norm(inp.pred[i, kk] - inp.real[q, kk])
            cnt += d_q > d_own
        assert np.isclose(acc[i], cnt / (N - 1))
        a, b = (inp.real[i] - inp.real_control)[k], (mu - inp.real_control)[k]
        assert np.isclose(sv[i], a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# ----------------------------------------------------------------------------- Mejia / Miller
def test_weighted_metrics_match_sklearn():
    rng = np.random.default_rng(4)
    inp0 = make_input(reference="centroid")
    W = rng.random(size=inp0.real.shape)
    import dataclasses
    inp = dataclasses.replace(inp0, weights=W)
    mu = inp.train.mean(axis=0)
    wm = get("wmse").fn(inp)
    wr2 = get("weighted_r2_delta").fn(inp)
    r2 = get("r2_delta").fn(inp)
    for i in range(inp.n_perturbations):
        w = W[i] / W[i].sum()
        assert np.isclose(wm[i], np.sum(w * (inp.pred[i] - inp.real[i]) ** 2))
        assert np.isclose(wr2[i], r2_score(inp.real[i] - mu, inp.pred[i] - mu, sample_weight=W[i]))
        assert np.isclose(r2[i], r2_score(inp.real[i] - mu, inp.pred[i] - mu))
    # a gene vector of weights broadcasts to every perturbation
    v = rng.random(inp.n_genes)
    inp2 = dataclasses.replace(inp0, weights=v)
    for i, val in enumerate(get("weighted_r2_delta").fn(inp2)):
        assert np.isclose(val, r2_score(inp.real[i] - mu, inp.pred[i] - mu, sample_weight=v))


def test_mejia_weight_formula():
    t = np.array([[0.5, -2.0, 1.0, 3.0]])
    a = np.abs(t[0])
    expected = ((a - a.min()) / (a.max() - a.min())) ** 2
    np.testing.assert_allclose(sm.mejia_weights(t)[0], expected)


def test_t_statistics_match_scanpy():
    sc = pytest.importorskip("scanpy")
    adata, _, _ = nb_screen(n_genes=25, n_perts=5, cells=20, n_ctrl=30, seed=5)
    a = adata[adata.obs["perturbation"] != "control"].copy()
    a.obs["perturbation"] = a.obs["perturbation"].cat.remove_unused_categories()
    from simpert._profiles import lognormalize
    a.X = lognormalize(a.X).toarray()
    sc.tl.rank_genes_groups(a, "perturbation", method="t-test_overestim_var", reference="rest",
                            use_raw=False, n_genes=a.n_vars)
    groups = list(a.obs["perturbation"].cat.categories)
    ours = sm.t_statistics(a.X, a.obs["perturbation"].astype(str).to_numpy(), groups)
    res = a.uns["rank_genes_groups"]
    for k, g in enumerate(groups):
        sc_scores = pd.Series(np.asarray(res["scores"][g], float), index=np.asarray(res["names"][g]))
        np.testing.assert_allclose(ours[k], sc_scores.loc[a.var_names].to_numpy(), rtol=1e-5, atol=1e-6)


def test_weight_sources_train_all_external():
    adata, _, lfc = nb_screen(n_genes=30, n_perts=8, cells=25, n_ctrl=60, seed=6, named_by_target=False)
    perts = [str(p) for p in adata.obs["perturbation"].cat.categories[1:]]
    split = Split(train=tuple(perts[:5]), test=tuple(perts[5:]))
    prof = observed(adata)
    err = np.random.default_rng(0).normal(scale=0.1, size=(3, 30))
    pred = profile_prediction("m", adata, prof.loc[list(split.test)].to_numpy() + err, split.test)
    out = {}
    for w in ("train", "all"):
        out[w] = score(Predictions([pred]), adata, split, metrics=["wmse"], weights=w)["value"].to_numpy()
    ext = score(Predictions([pred]), adata, split, metrics=["wmse"], weights=np.ones(30))["value"].to_numpy()
    np.testing.assert_allclose(ext, (err**2).mean(axis=1), rtol=1e-9)  # uniform weights: plain MSE
    assert not np.allclose(out["train"], out["all"])
    # "all" equals Mejia's weights computed by hand from the test perturbation vs all perturbed cells
    from simpert._profiles import lognormalize
    lab = adata.obs["perturbation"].astype(str).to_numpy()
    X = lognormalize(adata.X[lab != "control"]).toarray()
    L = lab[lab != "control"]
    for i, p in enumerate(split.test):
        g, r = X[L == p], X[L != p]
        t = (g.mean(0) - r.mean(0)) / np.sqrt(g.var(0, ddof=1) / len(g) + r.var(0, ddof=1) / len(g))
        w = sm.mejia_weights(t[None])[0]
        assert np.isclose(out["all"][i], np.sum(w * err[i] ** 2) / w.sum())


# ----------------------------------------------------------------------------- retrieval
@pytest.mark.parametrize("target", ["include", "exclude", "pairwise"])
def test_perturbench_rank_brute_force(target):
    inp = make_input(target=target)
    dr, dp = inp.real, inp.pred  # PerturBench's "average" aggregation: raw profiles
    got = get("perturbench_rank").fn(inp)
    N = inp.n_perturbations
    for p in range(N):
        d = []
        for q in range(N):
            drop = set()
            if target in ("exclude", "pairwise") and inp.targets[p] >= 0:
                drop.add(inp.targets[p])
            if target == "pairwise" and inp.targets[q] >= 0:
                drop.add(inp.targets[q])
            kk = [g for g in range(inp.n_genes) if g not in drop]
            d.append(np.sqrt(np.mean((dr[p, kk] - dp[q, kk]) ** 2)))
        d = np.array(d)
        assert np.isclose(got[p], ((d < d[p]).sum() + 0.5 * ((d == d[p]).sum() - 1)) / N)


def _fair_retrieval_input(case):
    if case == "default":
        return make_input(target="pairwise")
    if case == "two":  # the fewest perturbations it is defined for
        inp = make_input(P=2, target="pairwise")
        return dataclasses.replace(inp, targets=np.array([3, 0]))
    if case == "gene0":  # a target at the first gene, the others elsewhere or unknown; the
        # target's prediction is off and gene 1 differs from it, so mixing the two up shows
        rng = np.random.default_rng(4)
        real = rng.normal(size=(5, 8))
        pred = real + rng.normal(scale=0.8, size=(5, 8))
        pred[0, 0] += 3.0
        real[0, 1] += 2.0
        pred[0, 1] -= 1.0
        z = np.zeros(8)
        return MetricInput(pred=pred, real=real, pred_control=z, real_control=z, perturbations=tuple("abcde"),
                           genes=tuple(f"g{j}" for j in range(8)), targets=np.array([0, 4, -1, 7, 2]),
                           reference_real=None, reference_pred=None, train=None, train_perturbations=(),
                           weights=None, target="exclude", options=dict(sm.DEFAULT_OPTIONS))
    if case == "ties":  # integer profiles: many exactly equal distances
        rng = np.random.default_rng(3)
        real = rng.integers(0, 2, size=(6, 6)).astype(float)
        real[1] = real[0]
        pred = real.copy()
        pred[2] = real[3]
        z = np.zeros(6)
        return MetricInput(pred=pred, real=real, pred_control=z, real_control=z,
                           perturbations=tuple(f"p{i}" for i in range(6)), genes=tuple(f"g{j}" for j in range(6)),
                           targets=np.full(6, -1), reference_real=None, reference_pred=None, train=None,
                           train_perturbations=(), weights=None, target="include", options=dict(sm.DEFAULT_OPTIONS))
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["default", "two", "gene0", "ties"])
@pytest.mark.parametrize("metric", ["sqeuclidean", "l1"])
def test_fair_retrieval_brute_force(case, metric):
    inp = _fair_retrieval_input(case)
    P, T = inp.pred - inp.pred_control, inp.real - inp.real_control
    got = get("fair_retrieval").fn(inp) if metric == "sqeuclidean" else \
        sm._retrieval.fair_retrieval(inp, metric="l1")
    f = (lambda x: np.sum(x ** 2)) if metric == "sqeuclidean" else (lambda x: np.sum(np.abs(x)))
    N = inp.n_perturbations
    n_ties = 0
    for i in range(N):
        s = 0.0
        for j in range(N):
            if j == i:
                continue
            drop = {t for t in (inp.targets[i], inp.targets[j]) if t >= 0} if inp.target != "include" else set()
            kk = [g for g in range(inp.n_genes) if g not in drop]
            a = f(P[i, kk] - T[i, kk])
            b = f(P[i, kk] - T[j, kk])
            s += 1.0 if a < b else 0.5 if a == b else 0.0
            n_ties += a == b
        assert np.isclose(got[i], s / (N - 1), rtol=0, atol=1e-12), (case, i)
    if case == "ties":
        assert n_ties >= 2  # (0, 1) and (1, 0): equal observed profiles


def test_fair_retrieval_defeats_target_only_reward_hacking():
    """A prediction that only gets the target right wins plain retrieval, not the fair one."""
    import dataclasses
    inp = make_input(target="pairwise", P=10, G=40)
    hack = np.tile(inp.real_control, (inp.n_perturbations, 1))
    rows = np.flatnonzero(inp.targets >= 0)
    real = inp.real.copy()
    real[rows, inp.targets[rows]] -= 5.0  # strong knockdown of each target
    hacked = dataclasses.replace(inp, real=real, pred=hack, pred_control=inp.real_control)
    hacked.pred[rows, inp.targets[rows]] = real[rows, inp.targets[rows]]
    plain = get("fair_retrieval").fn(dataclasses.replace(hacked, target="include"))
    fair = get("fair_retrieval").fn(hacked)
    assert plain[rows].mean() > 0.9
    assert abs(fair[rows].mean() - 0.5) < 0.25


def test_scaled_score_matches_cell_eval():
    pytest.importorskip("cell_eval")
    pl = pytest.importorskip("polars")
    from cell_eval import score_agg_metrics

    user = {"pearson_delta": 0.6, "mae": 0.12, "discrimination_score_l1": 0.7, "overlap_at_N": 0.1}
    base = {"pearson_delta": 0.3, "mae": 0.1, "discrimination_score_l1": 0.5, "overlap_at_N": 0.2}
    mk = lambda d: pl.DataFrame({"statistic": ["mean"], **{k: [v] for k, v in d.items()}})
    theirs = score_agg_metrics(mk(user), mk(base)).to_pandas().set_index("metric")["from_baseline"]
    ours = sm.scaled_score(user, base).set_index("metric")["from_baseline"]
    for k in theirs.index:
        assert abs(ours[k] - theirs[k]) < 1e-12, k


def test_scaled_score_of_tidy_tables_with_nan_matches_cell_eval():
    """Per-perturbation tables: a DE metric's NaN rows are left out (cell-eval emits none),
    a profile metric's NaN propagates (polars' describe keeps NaN); the peer scores the
    same tables after its own pivot and describe()."""
    pytest.importorskip("cell_eval")
    pl = pytest.importorskip("polars")
    from cell_eval import score_agg_metrics

    perts = ["a", "b", "c", "d"]
    user = {"overlap_at_N": [0.2, np.nan, 0.4, 0.1], "pearson_delta": [0.5, 0.7, 0.6, 0.2],
            "mae": [0.1, 0.2, 0.15, np.nan]}
    base = {"overlap_at_N": [0.1, 0.3, np.nan, 0.1], "pearson_delta": [0.2, 0.1, 0.3, 0.4],
            "mae": [0.2, 0.2, 0.2, 0.2]}

    def tidy(d):
        return pd.DataFrame([(p, m, v[i]) for m, v in d.items() for i, p in enumerate(perts)],
                            columns=["perturbation", "metric", "value"])

    def theirs(d):
        # cell-eval's results: no row where a DE metric has no value (null after the pivot)
        cols = {m: [None if (m == "overlap_at_N" and np.isnan(x)) else float(x) for x in v] for m, v in d.items()}
        return pl.DataFrame({"perturbation": perts, **cols}).drop("perturbation").describe()

    want = score_agg_metrics(theirs(user), theirs(base)).to_pandas().set_index("metric")["from_baseline"]
    ours = sm.scaled_score(tidy(user), tidy(base)).set_index("metric")["from_baseline"]
    for k in want.index:
        assert ours[k] == pytest.approx(want[k], abs=1e-12), k
    # by hand: overlap (0.7/3 - 0.5/3) / (1 - 0.5/3) over the rows with values; mae NaN -> 0
    assert ours["overlap_at_N"] == pytest.approx((0.7 / 3 - 0.5 / 3) / (1 - 0.5 / 3), abs=1e-12)
    assert ours["mae"] == 0.0
    # the median over perturbations, the same rules
    med = sm.scaled_score(tidy(user), tidy(base), statistic="median").set_index("metric")["from_baseline"]
    assert med["pearson_delta"] == pytest.approx((0.55 - 0.25) / 0.75, abs=1e-12)
    assert med["overlap_at_N"] == pytest.approx((0.2 - 0.1) / 0.9, abs=1e-12)
