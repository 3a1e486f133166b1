"""metrics.evaluate / compare on data not made by simpert, against the internal path and the peers."""

from __future__ import annotations

import logging
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import simpert as spt
from simpert._profiles import group_profiles, lognormalize
from simpert.metrics import compare, detect_input_type, evaluate
from simpert.predict import Prediction, Predictions, Split

METRICS = ["pearson_delta", "mse", "mae", "discrimination_score_l1", "overlap_at_N", "de_sig_genes_recall"]


def _plain(a, *, control="non-targeting", key="gene_target", reverse_genes=False, dtype=np.float32):
    """A user's AnnData: string labels, another control name, float counts, no simpert metadata."""
    lab = a.obs["perturbation"].astype(str).to_numpy()
    obs = pd.DataFrame({key: np.where(lab == "control", control, lab)},
                       index=[f"cell_{i}" for i in range(a.n_obs)])
    X = sp.csr_matrix(a.X, dtype=dtype)
    out = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=np.asarray(a.var_names, dtype=str)))
    return out[:, ::-1].copy() if reverse_genes else out


@pytest.fixture(scope="module")
def screens():
    real = spt.sim.screen(n_genes=150, n_perturbations=10, n_control_cells=150, cells_per_perturbation=40,
                          p_effect=0.2, effect_size=1.2, rng=21)
    dup = spt.sim.redraw(real, rng=22)
    return real, dup


def _internal(real, pred_cells, metrics):
    """The internal scoring path on simpert's own objects: Prediction + Split + score."""
    test = tuple(c for c in real.obs["perturbation"].cat.categories if c != "control")
    prof = group_profiles(pred_cells)
    pred = Prediction(name="m", profiles=prof.loc[list(test)], control=prof.loc["control"], cells=pred_cells)
    table = spt.metrics.score(Predictions({"m": pred}), real, Split(train=(), test=test), metrics=metrics)
    return table.pivot(index="perturbation", columns="metric", values="value")


def test_plain_anndata_gives_the_internal_values(screens):
    real, dup = screens
    res = evaluate(_plain(dup, reverse_genes=True), _plain(real), control="non-targeting",
                   perturbation_key="gene_target", metrics=METRICS, n_boot=0, anchors=False)
    ours = res.per_perturbation.pivot(index="perturbation", columns="metric", values="value")
    internal = _internal(real, dup, METRICS)
    for m in METRICS:
        np.testing.assert_allclose(ours[m].to_numpy(), internal.loc[ours.index, m].to_numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=m)
    assert res.settings["input_type"] == "counts" and res.errors == []
    assert ours["overlap_at_N"].nunique() > 1  # not vacuous


def test_log_normalised_layer_gives_the_same_values(screens):
    real, dup = screens
    r, p = _plain(real), _plain(dup)
    for x in (r, p):
        x.layers["log1p"] = sp.csr_matrix(lognormalize(x.X, target_sum=1e4))
    on_counts = evaluate(p, r, control="non-targeting", perturbation_key="gene_target", metrics=METRICS,
                         n_boot=0, anchors=False).aggregate["value"]
    on_logs = evaluate(p, r, control="non-targeting", perturbation_key="gene_target", metrics=METRICS,
                       layer="log1p", n_boot=0, anchors=False)
    assert on_logs.settings["input_type"] == "lognorm"
    np.testing.assert_allclose(on_logs.aggregate["value"].to_numpy(), on_counts.to_numpy(), rtol=1e-9)


def test_profiles_as_prediction(screens):
    """One row per perturbation (a model that outputs profiles) scores like its cells' means."""
    real, dup = screens
    r = _plain(real)
    logs = ad.AnnData(X=lognormalize(dup.X, target_sum=1e4).toarray(), obs=_plain(dup).obs,
                      var=pd.DataFrame(index=np.asarray(dup.var_names, dtype=str)))
    prof = logs.to_df().groupby(logs.obs["gene_target"].to_numpy()).mean()
    pred = ad.AnnData(X=prof.to_numpy(), obs=pd.DataFrame({"gene_target": prof.index}, index=prof.index),
                      var=pd.DataFrame(index=logs.var_names))
    r_log = ad.AnnData(X=sp.csr_matrix(lognormalize(r.X, target_sum=1e4)), obs=r.obs, var=r.var)
    res = evaluate(pred, r_log, control="non-targeting", perturbation_key="gene_target",
                   metrics=["pearson_delta", "mse"], n_boot=0)
    internal = _internal(real, dup, ["pearson_delta", "mse"])
    ours = res.per_perturbation.query("model == 'prediction'").pivot(index="perturbation", columns="metric",
                                                                       values="value")
    np.testing.assert_allclose(ours["mse"].to_numpy(), internal.loc[ours.index, "mse"].to_numpy(), rtol=1e-9)
    assert np.isfinite(res.aggregate.loc["mse", "baseline"])  # real has cells: anchors computed


def test_matches_cell_eval_on_vcc_format(screens):
    """cell-eval's own evaluator on log-normalised input (the challenge's format)."""
    ce = pytest.importorskip("cell_eval")
    from scipy.stats import false_discovery_control, mannwhitneyu
    import polars as pl

    real, dup = screens
    r = _plain(real, key="target_gene")
    p = _plain(dup, key="target_gene")
    for x in (r, p):
        x.X = sp.csr_matrix(lognormalize(x.X, target_sum=1e4))

    def mwu(a):
        X = a.X.toarray()
        lab = a.obs["target_gene"].to_numpy()
        ctrl = X[lab == "non-targeting"]
        rows = []
        for q in sorted(set(lab) - {"non-targeting"}):
            xq = X[lab == q]
            pv = mannwhitneyu(xq, ctrl, axis=0, use_continuity=True, alternative="two-sided").pvalue
            pv = np.where(np.isnan(pv), 1.0, pv)
            e1, e0 = np.expm1(xq.mean(0)), np.expm1(ctrl.mean(0))
            with np.errstate(divide="ignore", invalid="ignore"):
                lfc = np.where((e1 == 0) & (e0 == 0), 0.0, np.log2(e1 / e0))
            rows.append(pd.DataFrame({"target": q, "feature": a.var_names, "log2_fold_change": lfc, "p_value": pv,
                                      "fdr": false_discovery_control(pv)}))
        return pl.from_pandas(pd.concat(rows, ignore_index=True))

    import tempfile

    with tempfile.TemporaryDirectory() as out:
        ev = ce.MetricsEvaluator(adata_pred=p, adata_real=r, de_pred=mwu(p), de_real=mwu(r),
                                 control_pert="non-targeting", pert_col="target_gene", num_threads=1, outdir=out)
        theirs, _ = ev.compute(profile="minimal", write_csv=False)
    theirs = theirs.to_pandas().set_index("perturbation")
    names = ["pearson_delta", "mae", "mse", "discrimination_score_l1", "overlap_at_N", "precision_at_N"]
    res = evaluate(p, r, control="non-targeting", perturbation_key="target_gene", metrics=names, n_boot=0,
                   anchors=False)
    ours = res.per_perturbation.pivot(index="perturbation", columns="metric", values="value")
    for m in names:
        np.testing.assert_allclose(ours[m].to_numpy(), theirs.loc[ours.index, m].to_numpy(dtype=float), rtol=0,
                                   atol=1e-7, err_msg=m)


def test_vcc2026_profile_matches_cell_eval2(screens):
    ce2 = pytest.importorskip("cell_eval2")
    from dataclasses import replace

    real, dup = screens
    r, p = _plain(real, dtype=np.int64), _plain(dup, dtype=np.int64)
    logging.disable(logging.WARNING)
    try:
        cfg = replace(ce2.EvalConfig.from_preset("vcc2026"), pert_col="gene_target", control="non-targeting",
                      num_threads=1)
        df = ce2.compute_metrics(p, r, config=cfg)
    finally:
        logging.disable(logging.NOTSET)
    theirs = df.to_pandas().pivot(index="perturbation", columns="metric", values="value")
    res = evaluate(p, r, control="non-targeting", perturbation_key="gene_target", profile="vcc2026", n_boot=50,
                   anchors=False)
    ours = res.per_perturbation.pivot(index="perturbation", columns="metric", values="value")
    for m in ["pds_cosine", "de_wilcoxon_direction_fidelity_yield_raw", "de_wilcoxon_sig_jaccard"]:
        d = np.abs(ours[m].to_numpy() - theirs.loc[ours.index, m].to_numpy(dtype=float))
        assert np.nanmax(d) <= 1e-9, m


# --------------------------------------------------------------------------- anchors, intervals, compare


def test_anchors_and_score(screens):
    real, dup = screens
    res = evaluate(_plain(dup), _plain(real), control="non-targeting", perturbation_key="gene_target",
                   metrics=["pearson_delta", "mse"], n_boot=300, rng=0)
    agg = res.aggregate
    for m in ("pearson_delta", "mse"):
        u, b, r = agg.loc[m, ["value", "baseline", "replicate"]]
        better = r > b if agg.loc[m, "higher_is_better"] else r < b
        if better:
            assert agg.loc[m, "score"] == pytest.approx((u - b) / (r - b))
        else:  # no scale: the replicate does not beat the mean response
            assert np.isnan(agg.loc[m, "score"]) and "not better" in agg.loc[m, "score_note"]
        assert agg.loc[m, "ci_low"] <= u <= agg.loc[m, "ci_high"]
    assert np.isfinite(agg.loc["pearson_delta", "score"])
    assert np.isnan(agg.loc["mse", "score"])  # half of 40 cells: noisier than the mean response
    # the duplicate correlates better than the mean response does
    assert agg.loc["pearson_delta", "value"] > agg.loc["pearson_delta", "baseline"]
    assert set(res.per_perturbation["model"]) == {"prediction", "baseline", "replicate"}
    text = str(res.summary())
    assert "pearson_delta" in text and "bootstrap" in text
    # same seed, same numbers
    again = evaluate(_plain(dup), _plain(real), control="non-targeting", perturbation_key="gene_target",
                     metrics=["pearson_delta", "mse"], n_boot=300, rng=0)
    pd.testing.assert_frame_equal(res.aggregate, again.aggregate)


def test_compare_paired(screens):
    real, dup = screens
    mean_like = spt.sim.redraw(real, rng=23)
    mean_like.X = mean_like.X.tocsr()
    # a worse model: the duplicate with its cells' labels shuffled among perturbations
    lab = mean_like.obs["perturbation"].astype(str).to_numpy().copy()
    pert = lab != "control"
    lab[pert] = np.random.default_rng(0).permutation(lab[pert])
    mean_like.obs["perturbation"] = pd.Categorical(lab, categories=real.obs["perturbation"].cat.categories)
    kw = dict(control="non-targeting", perturbation_key="gene_target", metrics=["pearson_delta"], n_boot=500)
    out = compare(_plain(dup), _plain(mean_like), _plain(real), **kw)
    row = out.table.loc["pearson_delta"]
    assert row["better"] == "a" and row["p_value"] < 0.01 and row["ci_low"] > 0
    same = compare(_plain(dup), _plain(dup), _plain(real), **kw).table.loc["pearson_delta"]
    assert same["difference"] == 0 and same["p_value"] == 1.0 and same["better"] == "tie"


# --------------------------------------------------------------------------- bad input


def test_detect_input_type():
    assert detect_input_type(np.array([[0, 3], [1, 2]])) == "counts"
    assert detect_input_type(np.array([[0.0, 1.5]])) == "lognorm"
    for bad, text in ((np.array([[-1.0, 2.0]]), "non-negative"), (np.array([[np.nan, 1.0]]), "finite"),
                      (np.array([[0.5, 250.5]]), "log-transformed")):
        with pytest.raises(ValueError, match=text):
            detect_input_type(bad)


def test_bad_input(screens):
    real, dup = screens
    r, p = _plain(real), _plain(dup)
    kw = dict(control="non-targeting", perturbation_key="gene_target", metrics=["mse"], n_boot=0, anchors=False)
    with pytest.raises(ValueError, match="'control'"):
        evaluate(p, r, **{**kw, "control": "ctrl"})
    with pytest.raises(ValueError, match="'perturbation_key'"):
        evaluate(p, r, **{**kw, "perturbation_key": "nope"})
    with pytest.raises(ValueError, match="'metrics'"):
        evaluate(p, r, control="non-targeting", perturbation_key="gene_target")
    other = p.copy()
    other.var_names = [f"x{i}" for i in range(other.n_vars)]
    with pytest.raises(ValueError, match="'pred' must be genes shared"):
        evaluate(other, r, **kw)
    neg = p.copy()
    neg.X = neg.X.copy()
    neg.X.data[0] = -1
    with pytest.raises(ValueError, match="non-negative"):
        evaluate(neg, r, **kw)
    nan = p.copy()
    nan.X = nan.X.copy()
    nan.X.data[0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        evaluate(nan, r, **kw)
    with pytest.raises(ValueError, match="'input_type'"):
        evaluate(p, r, **{**kw, "input_type": "lognorm"})
    logs = r.copy()
    logs.X = sp.csr_matrix(lognormalize(logs.X))
    with pytest.raises(ValueError, match="the same kind of values"):
        evaluate(p, logs, **kw)


def test_alignment_is_reported(screens):
    real, dup = screens
    r, p = _plain(real), _plain(dup)
    # pred: one extra perturbation real lacks, one perturbation missing, two genes fewer
    lab = p.obs["gene_target"].to_numpy().copy()
    first = sorted(set(lab) - {"non-targeting"})[0]
    lab[lab == first] = "invented"
    p.obs["gene_target"] = lab
    p = p[:, 2:].copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = evaluate(p, r, control="non-targeting", perturbation_key="gene_target", metrics=["mse"], n_boot=0,
                       anchors=False)
    text = " ".join(str(w.message) for w in caught)
    assert "perturbations only in pred" in text and "invented" in text
    assert "perturbations only in real" in text and first in text
    assert "genes only in real" in text
    assert res.dropped["perturbations only in pred"] == ["invented"]
    assert res.dropped["perturbations only in real"] == [first]
    assert len(res.dropped["genes only in real"]) == 2
    assert first not in set(res.per_perturbation["perturbation"])


def test_pred_without_control_uses_the_real_control(screens):
    real, dup = screens
    r, p = _plain(real), _plain(dup)
    p = p[p.obs["gene_target"] != "non-targeting"].copy()
    res = evaluate(p, r, control="non-targeting", perturbation_key="gene_target", metrics=["pearson_delta"],
                   n_boot=0, anchors=False)
    assert np.isfinite(res.aggregate.loc["pearson_delta", "value"])


# --------------------------------------------------------------------------- coverage


@pytest.mark.slow
@pytest.mark.parametrize("metric,cells,n_test", [("mse", 20, 30), ("mae", 10, 30), ("mse", 60, 60)])
def test_bootstrap_intervals_cover(metric, cells, n_test):
    """95% intervals over perturbations cover the population mean at 95% (within 2 MC SE).

    The interval is conditional on the screen's genes: the estimand is the mean over
    perturbations (effects, targets, cells) for fixed gene means and dispersions, so every
    screen here shares them. The population mean is the metric's mean over 3,150
    perturbations (its own SE is below 1/10 of an interval's half-width). With many cells the
    MSE of a repeat is dominated by the effects themselves and is heavy-tailed across
    perturbations: with 30 perturbations the BCa interval then covers about 90%, with 60 it
    reaches its level (the third setting)."""
    means = spt.sim.screen(n_genes=150, n_perturbations=1, rng=12345).var["base_mean"].to_numpy()
    params = dict(n_genes=150, n_control_cells=100, cells_per_perturbation=cells, p_effect=0.1,
                  cell_count_dispersion=0.0, gene_means=tuple(means))

    def values(n, seed):
        real = spt.sim.screen(n_perturbations=n, rng=seed, **params)
        dup = spt.sim.redraw(real, rng=seed + 10_000)
        res = evaluate(dup, real, metrics=[metric], n_boot=400, anchors=False, rng=seed)
        return res

    big = values(150, 99)
    pop = []
    for s in range(20):  # 20 x 150 perturbations
        r = values(150, 500 + s)
        pop.append(r.per_perturbation["value"].to_numpy())
    truth = float(np.mean(np.concatenate(pop + [big.per_perturbation["value"].to_numpy()])))
    R = 200
    hits = 0
    for s in range(R):
        r = values(n_test, s)
        lo, hi = r.aggregate.loc[metric, ["ci_low", "ci_high"]]
        hits += lo <= truth <= hi
    cover = hits / R
    se = np.sqrt(0.95 * 0.05 / R)
    assert abs(cover - 0.95) <= 2 * se + 0.005, cover


# --------------------------------------------------------------------------- command line


def test_cli_evaluate_and_compare(screens, tmp_path):
    from typer.testing import CliRunner

    from simpert.cli import app

    real, dup = screens
    _plain(real).write_h5ad(tmp_path / "real.h5ad")
    _plain(dup, reverse_genes=True).write_h5ad(tmp_path / "pred.h5ad")
    out = tmp_path / "eval"
    args = ["-q", "evaluate", "--pred", str(tmp_path / "pred.h5ad"), "--real", str(tmp_path / "real.h5ad"),
            "--control", "non-targeting", "--perturbation-key", "gene_target", "-m", "pearson_delta", "-m", "mse",
            "--n-boot", "100", "-o", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == ["perturbation", "metric", "value"] and len(results) == 2 * 10
    agg = pd.read_csv(out / "agg_results.csv")
    assert list(agg["statistic"]) == ["count", "null_count", "mean", "std", "min", "max", "median"]
    assert list(agg.columns) == ["statistic", "mse", "pearson_delta"]
    direct = evaluate(_plain(dup), _plain(real), control="non-targeting", perturbation_key="gene_target",
                      metrics=["pearson_delta", "mse"], n_boot=100, rng=0)
    intervals = pd.read_csv(out / "intervals.csv").set_index("metric")
    np.testing.assert_allclose(intervals["value"].to_numpy(), direct.aggregate["value"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(agg.set_index("statistic").loc["mean", ["pearson_delta", "mse"]].to_numpy(dtype=float),
                               direct.aggregate.loc[["pearson_delta", "mse"], "value"].to_numpy(), rtol=1e-12)
    # a second run into the same directory replaces it; a user's directory is refused
    assert CliRunner().invoke(app, args).exit_code == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    bad = CliRunner().invoke(app, args[:-1] + [str(mine)])
    assert bad.exit_code == 2 and (mine / "keep.txt").exists()
    cmp = CliRunner().invoke(app, ["-q", "compare", "--pred-a", str(tmp_path / "pred.h5ad"), "--pred-b",
                                   str(tmp_path / "pred.h5ad"), "--real", str(tmp_path / "real.h5ad"),
                                   "--control", "non-targeting", "--pert-col", "gene_target", "-m", "mse",
                                   "-o", str(tmp_path / "cmp.csv")])
    assert cmp.exit_code == 0, cmp.output
    t = pd.read_csv(tmp_path / "cmp.csv")
    assert t.loc[0, "difference"] == 0 and t.loc[0, "better"] == "tie"


@pytest.mark.parametrize("extra,text", [
    ([], "exactly one of --profile and --metric"),
    (["--profile", "nope", "-m", "mse"], "exactly one"),
    (["--profile", "nope"], "'profile'"),
    (["-m", "nope"], "metric 'nope'"),
    (["-m", "mse", "--control", "ctl"], "'control'"),
])
def test_cli_evaluate_bad_input(screens, tmp_path, extra, text):
    from typer.testing import CliRunner

    from simpert.cli import app

    real, dup = screens
    _plain(real).write_h5ad(tmp_path / "real.h5ad")
    _plain(dup).write_h5ad(tmp_path / "pred.h5ad")
    control = [] if "--control" in extra else ["--control", "non-targeting"]
    res = CliRunner().invoke(app, ["evaluate", "--pred", str(tmp_path / "pred.h5ad"), "--real",
                                   str(tmp_path / "real.h5ad"), "--pert-col", "gene_target", *control,
                                   "-o", str(tmp_path / "out"), *extra])
    assert res.exit_code == 2, res.output
    assert text in res.output
    assert not (tmp_path / "out").exists()


def test_vcc2026_on_a_tiny_panel_gives_values_without_a_scale(screens):
    """Two perturbations: the anchors coincide or are refused; values stay, scores are NaN."""
    real, dup = screens
    r, p = _plain(real, dtype=np.int64), _plain(dup, dtype=np.int64)
    keep = sorted(set(r.obs["gene_target"]) - {"non-targeting"})[:2] + ["non-targeting"]
    r = r[r.obs["gene_target"].isin(keep)].copy()
    p = p[p.obs["gene_target"].isin(keep)].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate(p, r, control="non-targeting", perturbation_key="gene_target", profile="vcc2026", n_boot=20)
    assert np.isfinite(res.aggregate["value"]).any()


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_compare_interval_is_the_percentile_bootstrap_of_the_mean_difference(screens, level):
    # the interval is the (1 - ci) / 2 and (1 + ci) / 2 quantiles of the resampled mean
    # difference: an independent resampling (another stream, 40,000 draws) agrees within a
    # tenth of the bootstrap SD (the two Monte Carlo errors are about 0.03 SD together; a
    # quantile at (1 - ci) / 3 instead is 0.17-0.22 SD away)
    real, dup = screens
    other = spt.sim.redraw(real, rng=31)
    kw = dict(control="non-targeting", perturbation_key="gene_target", metrics=["mse"], n_boot=40_000, ci=level)
    out = compare(_plain(dup), _plain(other), _plain(real), **kw)
    pp = out.per_perturbation
    d = (pp["a"] - pp["b"]).to_numpy(float)
    d = d[np.isfinite(d)]
    g = np.random.default_rng(999)
    means = d[g.integers(0, d.size, size=(40_000, d.size))].mean(axis=1)
    sd = means.std()
    row = out.table.loc["mse"]
    q = (1 - level) / 2
    assert abs(row["ci_low"] - np.quantile(means, q)) < 0.1 * sd
    assert abs(row["ci_high"] - np.quantile(means, 1 - q)) < 0.1 * sd


def test_agg_table_statistics_by_hand(screens):
    # cell-eval2's agg_results layout: count and null_count over every value, the rest over
    # the finite ones (std with ddof 1); a metric with one value per set has only its mean
    real, dup = screens
    res = spt.metrics.evaluate(_plain(dup), _plain(real), control="non-targeting", perturbation_key="gene_target",
                               metrics=["mse", "pearson_delta", "pearson_edistance"], anchors=False, n_boot=0)
    agg = res.agg_table().set_index("statistic")
    assert list(agg.index) == ["count", "null_count", "mean", "std", "min", "max", "median"]
    assert list(agg.columns) == ["mse", "pearson_delta", "pearson_edistance"]
    pp = res.per_perturbation
    for m in ("mse", "pearson_delta"):
        v = pp.loc[(pp["model"] == "prediction") & (pp["metric"] == m), "value"].to_numpy(float)
        f = v[np.isfinite(v)]
        want = [v.size, np.sum(~np.isfinite(v)), f.mean(), f.std(ddof=1), f.min(), f.max(), np.median(f)]
        np.testing.assert_allclose(agg[m].to_numpy(float), want, rtol=1e-12)
    e = agg["pearson_edistance"]
    assert e["mean"] == pytest.approx(float(res.aggregate.loc["pearson_edistance", "value"]), rel=1e-12)
    assert e.drop("mean").isna().all()


def test_compare_with_two_perturbations_is_scipys_paired_t_test(screens):
    """Two test perturbations are enough for the paired test: t and p are scipy's one-sample
    t-test of the two differences."""
    from scipy import stats

    real, dup = screens
    two = ["control"] + [c for c in real.obs["perturbation"].cat.categories if c != "control"][:2]
    other = spt.sim.redraw(real, rng=31)
    r, d, o = (x[x.obs["perturbation"].astype(str).isin(two).to_numpy()].copy() for x in (real, dup, other))
    kw = dict(control="non-targeting", perturbation_key="gene_target", metrics=["mse"], n_boot=0)
    row = compare(_plain(d), _plain(o), _plain(r), **kw).table.loc["mse"]
    a = evaluate(_plain(d), _plain(r), anchors=False, **kw).per_perturbation.set_index("perturbation")["value"]
    b = evaluate(_plain(o), _plain(r), anchors=False, **kw).per_perturbation.set_index("perturbation")["value"]
    dd = (a - b).loc[two[1:]].to_numpy()
    assert dd.size == 2 and dd[0] != dd[1]
    want = stats.ttest_1samp(dd, 0.0)
    assert row["n"] == 2
    assert row["t"] == pytest.approx(want.statistic, rel=1e-10)
    assert row["p_value"] == pytest.approx(want.pvalue, rel=1e-10)
    assert row["difference"] == pytest.approx(dd.mean(), rel=1e-10)
