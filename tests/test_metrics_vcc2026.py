"""Parity of the vcc2026 profile with cell-eval2 0.20.0, run on the same inputs.

cell-eval2 is run through its Python API (``compute_metrics`` with the packaged
``vcc2026`` preset, ``build_generic_baseline``, ``anchor.compute_replicate_anchor``,
``scoring.score_one``) on small simulated screens and on a plain AnnData built here, and
every per-perturbation value (the five per-perturbation metrics and both components of
``expr_mse_unbiased_capped_norm``), every aggregate, both anchors and every score are
compared with simpert's. Everything is float64 on both sides (the baseline prediction is
stored as float32 by both, identically), so the bound is max |diff| <= 1e-9 throughout
(measured: <= 1e-15). Undefined values (NaN in simpert, no row in cell-eval2) must
coincide.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import simpert as spt
from simpert.metrics import (
    VCC2026_METRICS,
    CellSet,
    MetricInput,
    get,
    vcc2026_anchors,
    vcc2026_baseline,
    vcc2026_metrics,
    vcc2026_score,
)
from simpert.metrics._vcc2026 import _DE, _de_metrics, _profile

ce2 = pytest.importorskip("cell_eval2")
ad = pytest.importorskip("anndata")

TOL = 1e-9
PER_PERT = ["pds_cosine", "de_wilcoxon_direction_fidelity_yield_raw", "de_wilcoxon_direction_reach_raw",
            "de_wilcoxon_sig_jaccard", "de_wilcoxon_lfc_nmae", "expr_mse_unbiased_capped",
            "expr_distance_unbiased"]


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _config(pert_col="perturbation", control="control", **kw):
    from cell_eval2 import EvalConfig

    return replace(EvalConfig.from_preset("vcc2026"), pert_col=pert_col, control=control, num_threads=1, **kw)


def _ce2(pred, real, cfg):
    from cell_eval2 import aggregate_metrics, compute_metrics

    df = compute_metrics(pred, real, config=cfg)
    per = df.to_pandas().pivot(index="perturbation", columns="metric", values="value")
    agg = aggregate_metrics(df).to_pandas().set_index("metric")["mean"]
    return per, agg


def _assert_parity(res, per, agg):
    for m in PER_PERT:
        ours = res.per_perturbation[m]
        theirs = per[m].dropna() if m in per else pd.Series(dtype=float)
        assert set(ours.dropna().index) == set(theirs.index), m  # same undefined values
        d = np.abs(ours.loc[theirs.index].to_numpy() - theirs.to_numpy())
        assert d.size == 0 or d.max() <= TOL, (m, d.max())
    for m in VCC2026_METRICS:
        assert abs(res.aggregate[m] - agg[m]) <= TOL, (m, res.aggregate[m], agg[m])


def _screen(seed, P=10, G=400, cells=70, nctrl=400):
    a = spt.sim.screen(spt.sim.ScreenParams(n_genes=G, n_perturbations=P, cells_per_perturbation=cells,
                                            n_control_cells=nctrl, effect_size=1.5, p_effect=0.12), rng=seed)
    a.obs = a.obs[["perturbation"]].copy()
    a.X = sp.csr_matrix(a.X)
    a.X.eliminate_zeros()
    return a


@pytest.fixture(scope="module")
def real():
    return _screen(0)


@pytest.fixture(scope="module")
def noisy(real):
    """A noisy copy: every count binomially thinned to 70 %."""
    rng = np.random.default_rng(5)
    X = real.X.tocsr().astype(np.int64)
    X.data = rng.binomial(X.data, 0.7)
    X.eliminate_zeros()
    return ad.AnnData(X=X, obs=real.obs.copy(), var=real.var.copy())


def test_noisy_copy_matches_cell_eval2(real, noisy):
    per, agg = _ce2(noisy, real, _config())
    _assert_parity(vcc2026_metrics(noisy, real), per, agg)


def test_wrong_labels_match_cell_eval2(real, noisy):
    labs = real.obs["perturbation"].astype(str).to_numpy()
    perts = sorted(set(labs) - {"control"})
    shift = dict(zip(perts, np.roll(perts, 1)))
    wrong = ad.AnnData(X=noisy.X.copy(), obs=pd.DataFrame({"perturbation": [shift.get(x, x) for x in labs]},
                                                          index=real.obs_names), var=real.var.copy())
    per, agg = _ce2(wrong, real, _config())
    res = vcc2026_metrics(wrong, real)
    _assert_parity(res, per, agg)
    assert res.aggregate["pds_cosine"] < 0.8


def test_mean_baseline_matches_cell_eval2(real):
    from cell_eval2.baseline import build_baseline_prediction, generic_response_profile

    ours = vcc2026_baseline(real)
    prof = generic_response_profile(real, pert_col="perturbation", control="control")
    theirs = build_baseline_prediction(prof, real, pert_col="perturbation", control="control",
                                       emit="dispersed", seed=0)
    assert ours.X.dtype == np.float32 and abs(ours.X - theirs.X).max() == 0  # the same cells, bit for bit
    per, agg = _ce2(ours, real, _config(allow_fractional_counts=True))
    _assert_parity(vcc2026_metrics(ours, real, options={"allow_fractional_counts": True}), per, agg)


def test_control_paste_matches_cell_eval2(real):
    """Every perturbation predicted by the whole real control pool: zero effects (every
    cosine distance 1, all ranks tied) and identical profiles (no across-perturbation
    spread, so the prediction's sampling correction is forfeited: rho = 0)."""
    ctrl = real[real.obs["perturbation"] == "control"]
    perts = [p for p in real.obs["perturbation"].cat.categories if p != "control"][:6]
    keep = real.obs["perturbation"].isin([*perts, "control"]).to_numpy()
    small = real[keep].copy()
    blocks = [ctrl.X] * (len(perts) + 1)
    labels = [p for p in perts for _ in range(ctrl.n_obs)] + ["control"] * ctrl.n_obs
    paste = ad.AnnData(X=sp.vstack(blocks).tocsr(), obs=pd.DataFrame({"perturbation": labels},
                       index=[f"p{i}" for i in range(len(labels))]), var=real.var.copy())
    per, agg = _ce2(paste, small, _config())
    res = vcc2026_metrics(paste, small)
    _assert_parity(res, per, agg)
    assert (res.per_perturbation["pds_cosine"] == 0.5).all()


def test_anchors_and_score_match_cell_eval2(real, noisy):
    from cell_eval2 import build_generic_baseline
    from cell_eval2.anchor import compute_replicate_anchor
    from cell_eval2.score import _replicate_entries
    from cell_eval2.scoring import score_one

    cfg = _config()
    small = real[real.obs["perturbation"].isin(real.obs["perturbation"].cat.categories[:7])].copy()
    _, anchor = compute_replicate_anchor(small, config=cfg)
    base = build_generic_baseline(small, config=cfg).agg
    ours = vcc2026_anchors(small)
    rep = anchor.to_pandas().set_index("metric")
    bmean = base.filter(base["statistic"] == "mean").to_pandas().iloc[0]
    for m in VCC2026_METRICS:
        assert abs(ours.loc[m, "replicate"] - rep.loc[m, "replicate"]) <= TOL, m
        assert abs(ours.loc[m, "replicate_sd"] - rep.loc[m, "replicate_sd"]) <= TOL, m
        assert abs(ours.loc[m, "baseline"] - bmean[m]) <= TOL, m
    pred = noisy[small.obs_names].copy()
    sc = vcc2026_score(pred, small, anchors=ours)
    _, agg = _ce2(pred, small, cfg)
    entries = _replicate_entries({m: float(bmean[m]) for m in VCC2026_METRICS}, anchor)
    for m in VCC2026_METRICS:
        s = score_one(float(agg[m]), entries[m].base, entries[m].scoring)
        assert abs(sc.table.loc[m, "score"] - s) <= TOL, (m, sc.table.loc[m, "score"], s)
    assert abs(sc.avg_score - np.mean([score_one(float(agg[m]), entries[m].base, entries[m].scoring)
                                       for m in VCC2026_METRICS])) <= TOL


def _plain(seed=3, G=260, per=60, nctrl=300):
    """A plain AnnData: gene symbols, 'non-targeting' control, a label that is no gene,
    categorical labels in unsorted category order, int32 counts."""
    rng = np.random.default_rng(seed)
    genes = np.array([f"{a}{b}{i}" for i, (a, b) in enumerate(zip(rng.choice(list("ABCDEFGH"), G),
                                                                    rng.choice(list("XYZW"), G)))])
    base = rng.gamma(0.6, 4.0, G) + 0.05
    targets = rng.choice(G, 7, replace=False)
    labels = [*genes[targets], "SCRAMBLED"]
    effects = np.zeros((len(labels), G))
    for k, t in enumerate(targets):
        hit = rng.random(G) < 0.06 * (k + 1) / 4
        effects[k, hit] = rng.normal(0, 1.3, hit.sum())
        effects[k, t] = -2.5

    def draw(r, eff_scale):
        blocks, obs = [], []
        for k, lab in enumerate(labels):
            mu = base * 2.0 ** (eff_scale * effects[k]) * r.lognormal(0, 0.2, (per, 1))
            blocks.append(r.negative_binomial(4, 4 / (4 + mu)))
            obs += [lab] * per
        mu = base * r.lognormal(0, 0.2, (nctrl, 1))
        blocks.append(r.negative_binomial(4, 4 / (4 + mu)))
        obs += ["non-targeting"] * nctrl
        cats = ["non-targeting", "SCRAMBLED", *sorted(genes[targets], reverse=True)]
        return np.vstack(blocks), pd.DataFrame({"target_gene": pd.Categorical(obs, categories=cats)},
                                               index=[f"c{seed}_{i}" for i in range(len(obs))])

    Xr, obs_r = draw(np.random.default_rng(seed + 1), 1.0)
    Xp, obs_p = draw(np.random.default_rng(seed + 2), 0.6)
    real = ad.AnnData(X=sp.csr_matrix(Xr.astype(np.int32)), obs=obs_r, var=pd.DataFrame(index=genes))
    order = rng.permutation(G)
    pred = ad.AnnData(X=sp.csr_matrix(Xp[:, order].astype(np.float32)), obs=obs_p,
                      var=pd.DataFrame(index=genes[order]))
    for a in (real, pred):
        a.X.eliminate_zeros()
    return real, pred


def test_plain_anndata_matches_cell_eval2():
    real, pred = _plain()
    res = vcc2026_metrics(pred, real, pert_col="target_gene", control="non-targeting")
    per, agg = _ce2(pred[:, real.var_names].copy(), real, _config("target_gene", "non-targeting"))
    _assert_parity(res, per, agg)
    pp = res.per_perturbation
    # edge cases reached through real data: an empty union scores 1; a gate under 10 genes is NaN
    assert pp.loc["SCRAMBLED", "de_wilcoxon_sig_jaccard"] == 1.0
    assert pp["de_wilcoxon_lfc_nmae"].isna().any() and pp["de_wilcoxon_lfc_nmae"].notna().any()


def test_anchors_on_plain_anndata_match_cell_eval2():
    """Categorical labels whose category order is not sorted: the split follows it."""
    from cell_eval2 import build_generic_baseline
    from cell_eval2.anchor import compute_replicate_anchor

    real, _ = _plain(seed=21, G=200, per=120, nctrl=300)
    cfg = _config("target_gene", "non-targeting")
    _, anchor = compute_replicate_anchor(real, config=cfg)
    base = build_generic_baseline(real, config=cfg).agg
    ours = vcc2026_anchors(real, pert_col="target_gene", control="non-targeting")
    rep = anchor.to_pandas().set_index("metric")
    bmean = base.filter(base["statistic"] == "mean").to_pandas().iloc[0]
    for m in VCC2026_METRICS:
        assert abs(ours.loc[m, "replicate"] - rep.loc[m, "replicate"]) <= TOL, m
        assert abs(ours.loc[m, "baseline"] - bmean[m]) <= TOL, m
    weak, _ = _plain(seed=21, G=200, per=50, nctrl=200)  # a half's summed effect size is negative
    with pytest.raises(ValueError, match="summed sampling-corrected effect size"):
        vcc2026_anchors(weak, pert_col="target_gene", control="non-targeting")
    with pytest.raises(ValueError, match="sum of expr_distance_unbiased"):
        compute_replicate_anchor(weak, config=cfg)


def test_construct_labels_with_a_target_map_match_cell_eval2():
    real, pred = _plain(seed=11)
    for a in (real, pred):
        a.obs["target_gene"] = a.obs["target_gene"].cat.rename_categories(
            lambda c: c if c == "non-targeting" else f"{c}-1")
    tmap = {c: c[:-2] for c in real.obs["target_gene"].cat.categories if c.endswith("-1")}
    tmap["SCRAMBLED-1"] = None
    res = vcc2026_metrics(pred, real, pert_col="target_gene", control="non-targeting", target_genes=tmap)
    per, agg = _ce2(pred[:, real.var_names].copy(), real,
                    _config("target_gene", "non-targeting", target_gene_map=tmap))
    _assert_parity(res, per, agg)
    with pytest.raises(ValueError, match="'target_genes'"):  # construct IDs resolve to no gene
        vcc2026_metrics(pred, real, pert_col="target_gene", control="non-targeting")


def _de(lfc, padj, p=None):
    lfc = np.asarray(lfc, float)
    padj = np.asarray(padj, float)
    return _DE(lfc, padj if p is None else np.asarray(p, float), padj, np.ones(lfc.shape[1], bool))


def test_definition_edges():
    opts = _profile("vcc2026")
    G = 30
    rows = np.arange(3)
    names = np.arange(G)
    lr = np.tile(np.linspace(-2, 2, G), (3, 1))
    lr[lr == 0] = 0.5
    pr = np.ones((3, G))
    pr[1, :9] = 0.01  # 9 significant genes: under the gate of 10
    pr[2, :10] = 0.01  # 10: scored
    lp = lr.copy()
    lp[2, :10] *= 2.0
    pp = pr.copy()
    out = _de_metrics(_de(lr, pr), _de(lp, pp), rows, rows, np.full(3, -1), names, opts)
    assert out["de_wilcoxon_sig_jaccard"][0] == 1.0  # empty union
    assert np.isnan(out["de_wilcoxon_lfc_nmae"][:2]).all()
    assert out["de_wilcoxon_lfc_nmae"][2] == pytest.approx(1.0)  # |2l - l| / |l|
    assert np.isnan(out["de_wilcoxon_direction_fidelity_yield_raw"][0])  # 0 / 0
    assert np.isnan(out["de_wilcoxon_direction_reach_raw"][0])
    assert out["de_wilcoxon_direction_fidelity_yield_raw"][2] == 1.0
    # the target gene is removed from both sides: excluding the only real hit empties the set
    pr2 = np.ones((3, G))
    pr2[:, 4] = 0.01
    out = _de_metrics(_de(lr, pr2), _de(lr, np.ones((3, G))), rows, rows, np.array([4, 4, -1]), names, opts)
    assert list(out["de_wilcoxon_sig_jaccard"]) == [1.0, 1.0, 0.0]
    # reach: a leading miss then nine matches reaches purity 0.9 at depth 10
    sig = np.ones((1, G))
    sig[0, :10] = 0.01
    lp1 = lr[:1].copy()
    lp1[0, 0] = -lp1[0, 0]
    ppad = np.ones((1, G))
    ppad[0, :10] = np.linspace(1e-5, 1e-4, 10)
    out = _de_metrics(_de(lr[:1], sig), _de(lp1, ppad), np.arange(1), np.arange(1), np.full(1, -1), names, opts)
    assert out["de_wilcoxon_direction_reach_raw"][0] == 1.0
    assert out["de_wilcoxon_direction_fidelity_yield_raw"][0] == 0.9


def test_registered_metrics_read_count_cells(real, noisy):
    res = vcc2026_metrics(noisy, real)
    test = tuple(res.per_perturbation.index)
    genes = tuple(real.var_names)
    labels = real.obs["perturbation"].astype(str).to_numpy()

    def cells(a):
        lab = a.obs["perturbation"].astype(str).to_numpy()
        code = pd.Index(test).get_indexer(lab)
        return CellSet(X=a.X, group=np.where(lab == "control", -1, code))

    gpos = {g: i for i, g in enumerate(genes)}
    P, G = len(test), len(genes)
    inp = MetricInput(pred=np.zeros((P, G)), real=np.zeros((P, G)), pred_control=np.zeros(G),
                      real_control=np.zeros(G), perturbations=test, genes=genes,
                      targets=np.array([gpos[t] for t in test]), real_cells=cells(real), pred_cells=cells(noisy),
                      target="exclude", cache={})
    for m in VCC2026_METRICS:
        v = get(m)(inp)
        want = res.aggregate[m] if m == "expr_mse_unbiased_capped_norm" else res.per_perturbation[m].to_numpy()
        np.testing.assert_allclose(v, np.broadcast_to(want, v.shape), rtol=0, atol=1e-12)
        assert get(m).source == "cell-eval2"
    lognorm = CellSet(X=np.log1p(real.X.toarray()), group=inp.real_cells.group)
    with pytest.raises(ValueError, match="raw integer counts"):
        get("pds_cosine")(MetricInput(**{**inp.__dict__, "real_cells": lognorm, "cache": {}}))
    assert labels.size == real.n_obs


def test_bad_input_is_named(real, noisy):
    with pytest.raises(ValueError, match="'control'"):
        vcc2026_metrics(noisy, real, control="nt")
    with pytest.raises(ValueError, match="'pert_col'"):
        vcc2026_metrics(noisy, real, pert_col="guide")
    frac = ad.AnnData(X=real.X * 0.5, obs=real.obs.copy(), var=real.var.copy())
    with pytest.raises(ValueError, match="'real'.*integer counts"):
        vcc2026_metrics(noisy, frac)
    with pytest.raises(ValueError, match="'pred'.*same .*genes"):
        vcc2026_metrics(noisy[:, :-1].copy(), real)
    with pytest.raises(ValueError, match="'options'"):
        vcc2026_metrics(noisy, real, options={"fdr_typo": 0.1})
    huge = ad.AnnData(X=real.X * 10000, obs=real.obs.copy(), var=real.var.copy())
    with pytest.raises(ValueError, match="'real'.*no cell total above 1e"):
        vcc2026_metrics(noisy, huge)
    one = real[[*np.flatnonzero(real.obs["perturbation"] != real.obs["perturbation"].iloc[-1]),
                real.n_obs - 1]].copy()
    with pytest.raises(ValueError, match="at least 2 cells"):
        vcc2026_anchors(one)
    flat = pd.DataFrame({"baseline": 0.5, "replicate": 0.5}, index=list(VCC2026_METRICS))
    with pytest.raises(ValueError, match="'anchors'"):
        vcc2026_score(noisy, real, anchors=flat)
    renamed = real.copy()
    renamed.obs["perturbation"] = renamed.obs["perturbation"].astype(str).str.replace("g", "KD_")
    with pytest.raises(ValueError, match="'target_genes'"):
        vcc2026_metrics(renamed, renamed)
    extra = noisy.copy()
    lab = extra.obs["perturbation"].astype(str).to_numpy().copy()
    lab[-1] = "invented"
    extra.obs["perturbation"] = lab
    with pytest.raises(ValueError, match=r"'pred'.*labels only in pred \['invented'\]"):
        vcc2026_metrics(extra, real)


@pytest.mark.parametrize("u", [-0.5, 0.0, 0.1, 0.3, 0.5, 0.9, 1.0, 1.5, 3.0, float("nan")])
def test_each_metric_score_and_its_clamps_match_cell_eval2(u):
    # the replicate scale (u - b) / (r - b) with each metric's clamps and missing-value rule,
    # against cell-eval2's own score_one over values below, inside and above [baseline, replicate]
    import polars as pl
    from cell_eval2.score import _replicate_entries
    from cell_eval2.scoring import score_one

    from simpert.metrics._vcc2026 import _HIGHER, _score_one

    ends = {m: ((0.2, 0.8) if _HIGHER[m] else (0.8, 0.2)) for m in VCC2026_METRICS}
    anchor = pl.DataFrame({"metric": list(VCC2026_METRICS), "replicate": [ends[m][1] for m in VCC2026_METRICS]})
    entries = _replicate_entries({m: ends[m][0] for m in VCC2026_METRICS}, anchor)
    for m in VCC2026_METRICS:
        want = score_one(u, entries[m].base, entries[m].scoring)
        assert _score_one(m, u, *ends[m]) == pytest.approx(want, rel=1e-12, abs=1e-12), m


@pytest.mark.parametrize("P", [2, 3])
def test_few_perturbations_match_cell_eval2(P):
    """With two or three perturbations the across-perturbation budget of the capped MSE rests
    on genes seen in exactly two of them (P - 1 where a gene is a target): the budget's
    threshold of two rows is reached exactly."""
    real = _screen(40 + P, P=P, G=200, cells=60, nctrl=200)
    rng = np.random.default_rng(P)
    X = real.X.tocsr().astype(np.int64)
    X.data = rng.binomial(X.data, 0.5)
    X.eliminate_zeros()
    pred = ad.AnnData(X=X, obs=real.obs.copy(), var=real.var.copy())
    per, agg = _ce2(pred, real, _config())
    res = vcc2026_metrics(pred, real)
    _assert_parity(res, per, agg)
    assert np.isfinite(res.per_perturbation["expr_mse_unbiased_capped"]).all()


def test_a_target_at_the_first_gene_matches_cell_eval2(real, noisy):
    """Genes reordered so that a perturbation's target is gene 0 of the matrix: it is dropped
    from that perturbation's distances as any other target."""
    first = [c for c in real.obs["perturbation"].cat.categories if c != "control"][0]
    names = list(map(str, real.var_names))
    order = [names.index(first)] + [j for j in range(len(names)) if names[j] != first]
    r, p = real[:, order].copy(), noisy[:, order].copy()
    assert str(r.var_names[0]) == first
    per, agg = _ce2(p, r, _config())
    _assert_parity(vcc2026_metrics(p, r), per, agg)


@pytest.mark.parametrize("block", [1, 7, 1 << 17])
def test_mann_whitney_p_values_of_tiny_groups_match_scipy(block):
    """Groups of one to four cells against a reference of two (ties, zeros, a gene where
    everything ties): scipy's asymptotic two-sided test with continuity and tie correction;
    p = 1 where every value ties. Blocks of one column and more give the same values."""
    from scipy.stats import mannwhitneyu

    from simpert.metrics._vcc2026 import _mwu

    rng = np.random.default_rng(4)
    sizes = {0: 2, 1: 1, 2: 2, 3: 3, 4: 4}  # group 0 is the reference
    cg = np.concatenate([np.full(n, g) for g, n in sizes.items()])
    L = rng.choice([0.0, 0.0, 1.0, 1.5, 2.0, 3.25], size=(cg.size, 6))
    L[:, 5] = 1.0  # every value tied
    L[:, 4] = 0.0
    L[cg == 3, 4] = 2.0
    got = _mwu(sp.csr_matrix(L), cg, len(sizes), 0, block=block)
    assert np.isnan(got[0]).all()
    for g in range(1, len(sizes)):
        for j in range(6):
            x, y = L[cg == g, j], L[cg == 0, j]
            if np.ptp(np.concatenate([x, y])) == 0:
                assert got[g, j] == 1.0
                continue
            want = mannwhitneyu(x, y, method="asymptotic", use_continuity=True, alternative="two-sided").pvalue
            assert got[g, j] == pytest.approx(min(want, 1.0), rel=1e-10, abs=1e-14), (g, j)


def test_a_perfect_prediction_reaches_each_registered_best_value(real):
    """The registered vcc2026 metrics read raw count cells (which evaluate's log-normalised
    route cannot give them): predicted cells = real cells reach the best value each metric is
    registered with, on every perturbation. Not the capped MSE: it subtracts both sides'
    sampling variance, so a copy of the observed cells (which repeats their sampling noise)
    scores below its best value 0, the score of the expected profile. The user's count matrix
    (float64 here, as after a round trip through a file) is left as it was."""
    X = sp.csr_matrix(real.X, dtype=np.float64)
    # a count of the first cell stored as two entries (1 + rest), as a user's matrix may hold
    r0 = slice(X.indptr[0], X.indptr[1])
    k = int(np.flatnonzero(X.data[r0] >= 2)[0])
    coo = X.tocoo()
    row = np.r_[coo.row, 0]
    col = np.r_[coo.col, X.indices[r0][k]]
    val = np.r_[coo.data, 1.0]
    val[X.indptr[0] + k] -= 1.0
    order = np.lexsort((col, row))
    X = sp.csr_matrix((val[order], col[order], np.r_[0, np.cumsum(np.bincount(row, minlength=X.shape[0]))]),
                      shape=X.shape)
    assert not X.has_canonical_format
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    test = tuple(sorted(set(real.obs["perturbation"].astype(str)) - {"control"}))
    genes = tuple(real.var_names)
    lab = real.obs["perturbation"].astype(str).to_numpy()
    code = pd.Index(test).get_indexer(lab)
    cells = CellSet(X=X, group=np.where(lab == "control", -1, code))
    gpos = {g: i for i, g in enumerate(genes)}
    P, G = len(test), len(genes)
    inp = MetricInput(pred=np.zeros((P, G)), real=np.zeros((P, G)), pred_control=np.zeros(G),
                      real_control=np.zeros(G), perturbations=test, genes=genes,
                      targets=np.array([gpos[t] for t in test]), real_cells=cells, pred_cells=cells,
                      target="exclude", cache={})
    for m in VCC2026_METRICS:
        v = np.asarray(get(m)(inp), dtype=float)
        if m == "expr_mse_unbiased_capped_norm":
            assert (v < 0).all()
            continue
        v = v[np.isfinite(v)]
        assert v.size >= 1, m
        np.testing.assert_allclose(v, get(m).best, rtol=0, atol=1e-9, err_msg=m)
    for arr, old in zip((X.data, X.indices, X.indptr), before):
        np.testing.assert_array_equal(arr, old)


def test_three_perturbations_two_of_them_on_one_gene_match_cell_eval2():
    """Two of three perturbations target the same gene (a target map, as for two guides
    scored apart): that gene is seen in only one perturbation, below the capped MSE budget's
    threshold of two, while every other gene is seen in three."""
    real = _screen(61, P=3, G=200, cells=60, nctrl=200)
    rng = np.random.default_rng(9)
    X = real.X.tocsr().astype(np.int64)
    X.data = rng.binomial(X.data, 0.5)
    X.eliminate_zeros()
    pred = ad.AnnData(X=X, obs=real.obs.copy(), var=real.var.copy())
    labels = [c for c in real.obs["perturbation"].cat.categories if c != "control"]
    tmap = {labels[0]: labels[0], labels[1]: labels[0], labels[2]: labels[2]}
    per, agg = _ce2(pred, real, _config(target_gene_map=tmap))
    res = vcc2026_metrics(pred, real, target_genes=tmap)
    _assert_parity(res, per, agg)
