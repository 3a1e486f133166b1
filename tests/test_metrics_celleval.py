"""Parity with cell-eval 0.8.x itself, run on simulated AnnData with the same DE input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import false_discovery_control, mannwhitneyu

from simpert._profiles import lognormalize
from simpert.metrics import score
from simpert.predict._types import Predictions, Split

from _metrics_data import nb_screen, prediction_from_cells

ce = pytest.importorskip("cell_eval")
pl = pytest.importorskip("polars")
ad = pytest.importorskip("anndata")


def lognorm_adata(a):
    b = a.copy()
    b.X = sp.csr_matrix(lognormalize(a.X))
    return b


def mwu_de(adata_log, control="control"):
    """cell-eval's DE (pdex, mode 'ref'): MWU with tie + continuity correction, BH, LFC."""
    X = adata_log.X.toarray()
    lab = adata_log.obs["perturbation"].astype(str).to_numpy()
    ctrl = X[lab == control]
    rows = []
    for p in pd.unique(lab[lab != control]):
        xp = X[lab == p]
        pv = mannwhitneyu(xp, ctrl, axis=0, use_continuity=True, alternative="two-sided").pvalue
        pv = np.where(np.isnan(pv), 1.0, pv)
        a, b = np.expm1(xp.mean(0)), np.expm1(ctrl.mean(0))
        with np.errstate(divide="ignore", invalid="ignore"):
            lfc = np.where((a == 0) & (b == 0), 0.0, np.log2(a / b))
        rows.append(pd.DataFrame({"target": p, "feature": adata_log.var_names, "log2_fold_change": lfc,
                                  "p_value": pv, "fdr": false_discovery_control(pv)}))
    return pl.from_pandas(pd.concat(rows, ignore_index=True))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    real, base, lfc = nb_screen(n_genes=80, n_perts=20, cells=40, n_ctrl=200, seed=3, effect=0.6)
    # predicted cells: an independent draw with shrunken effects
    pred, _, _ = nb_screen(n_genes=80, n_perts=20, cells=30, n_ctrl=100, seed=3, effect=0.6, noise_seed=11)
    rng = np.random.default_rng(9)
    Xp = pred.X.toarray()
    Xp = rng.binomial(Xp, 0.5)  # thin counts: a noisier, related prediction
    pred.X = sp.csr_matrix(Xp)
    real_log, pred_log = lognorm_adata(real), lognorm_adata(pred)
    de_real, de_pred = mwu_de(real_log), mwu_de(pred_log)
    test = tuple(str(p) for p in real.obs["perturbation"].cat.categories[1:])
    split = Split(train=(), test=test, control="control")
    preds = Predictions([prediction_from_cells("model", pred, test)])
    outdir = tmp_path_factory.mktemp("ce")
    ev = ce.MetricsEvaluator(adata_pred=pred_log, adata_real=real_log, de_pred=de_pred, de_real=de_real,
                             control_pert="control", pert_col="perturbation", num_threads=1,
                             outdir=str(outdir))
    res, _ = ev.compute(profile="minimal", write_csv=False)
    theirs = res.to_pandas().set_index("perturbation")
    return dict(real=real, pred=pred, real_log=real_log, pred_log=pred_log, de_real=de_real,
                de_pred=de_pred, split=split, preds=preds, theirs=theirs, test=test)


NAMES = ["pearson_delta", "mae", "mse", "discrimination_score_l1", "overlap_at_N", "precision_at_N"]


def test_minimal_profile_matches_cell_eval(setup):
    ours = score(setup["preds"], setup["real"], setup["split"], metrics=NAMES,
                 de={"real": setup["de_real"], "model": setup["de_pred"]})
    wide = ours.pivot(index="perturbation", columns="metric", values="value")
    theirs = setup["theirs"].loc[wide.index]
    print("measured cell-eval minimal: " + ", ".join(
        f"{n} {np.abs(wide[n].to_numpy() - theirs[n].to_numpy(dtype=float)).max():.3g}" for n in NAMES))
    for name in NAMES:
        np.testing.assert_allclose(wide[name].to_numpy(), theirs[name].to_numpy(dtype=float),
                                   rtol=0, atol=1e-9, err_msg=name)
    # the test is not vacuous: the values vary across perturbations
    assert wide["discrimination_score_l1"].nunique() > 1
    assert (wide["overlap_at_N"] > 0).any() and (wide["overlap_at_N"] < 1).any()


def test_pds_without_target_exclusion_matches(setup):
    from cell_eval._types import PerturbationAnndataPair
    from cell_eval.metrics import discrimination_score

    pair = PerturbationAnndataPair(real=setup["real_log"], pred=setup["pred_log"],
                                   pert_col="perturbation", control_pert="control")
    for metric in ("l1", "l2", "cosine"):
        for exclude, target in ((False, "include"), (True, "exclude")):
            theirs = discrimination_score(pair, metric=metric, exclude_target_gene=exclude)
            ours = score(setup["preds"], setup["real"], setup["split"],
                         metrics=[f"discrimination_score_{metric}"], target=target)
            got = dict(zip(ours["perturbation"], ours["value"]))
            d = max(abs(got[p] - v) for p, v in theirs.items())
            print(f"measured discrimination_score_{metric} exclude={exclude}: {d:.3g}")
            assert d < 1e-9, (metric, exclude, d)


def test_other_profile_and_de_metrics_match(setup):
    from cell_eval._types import PerturbationAnndataPair, initialize_de_comparison
    from cell_eval.metrics import metrics_registry as reg

    pair = PerturbationAnndataPair(real=setup["real_log"], pred=setup["pred_log"],
                                   pert_col="perturbation", control_pert="control")
    comp = initialize_de_comparison(real=setup["de_real"], pred=setup["de_pred"])
    names = ["mse_delta", "mae_delta", "overlap_at_50", "precision_at_50", "de_direction_match",
             "de_spearman_lfc_sig", "de_sig_genes_recall", "pr_auc", "roc_auc"]
    ours = score(setup["preds"], setup["real"], setup["split"], metrics=names,
                 de={"real": setup["de_real"], "model": setup["de_pred"]})
    worst = {}
    for name in names:
        info = reg.get_metric(name)
        data = comp if info.type.value == "de" else pair
        theirs = reg.compute(name, data)
        got = ours[ours.metric == name].set_index("perturbation")["value"]
        for p in setup["test"]:
            v = theirs.get(p, np.nan)
            v = np.nan if v is None else float(v)
            if np.isnan(v):
                assert np.isnan(got[p]), (name, p)
            else:
                worst[name] = max(worst.get(name, 0.0), abs(got[p] - v))
                assert abs(got[p] - v) < 1e-6, (name, p, got[p], v)
    print("measured cell-eval other: " + ", ".join(f"{k} {v:.3g}" for k, v in worst.items()))


def test_edistance_correlation_matches(setup):
    from cell_eval._types import PerturbationAnndataPair
    from cell_eval.metrics._anndata import edistance

    pair = PerturbationAnndataPair(real=setup["real_log"], pred=setup["pred_log"],
                                   pert_col="perturbation", control_pert="control")
    theirs = edistance(pair)
    ours = score(setup["preds"], setup["real"], setup["split"], metrics=["pearson_edistance"])
    print(f"measured pearson_edistance: {np.abs(ours['value'].to_numpy() - theirs).max():.3g}")
    np.testing.assert_allclose(ours["value"].to_numpy(), theirs, atol=1e-9)


def test_de_computed_by_simpert_wilcoxon_when_not_given(setup):
    """With de=None the DE tables come from simpert.de.wilcoxon on observed and predicted cells."""
    de_mod = pytest.importorskip("simpert.de")
    if not hasattr(de_mod, "wilcoxon"):
        pytest.skip("simpert.de.wilcoxon not available")
    names = ["overlap_at_N", "precision_at_N", "roc_auc"]
    auto = score(setup["preds"], setup["real"], setup["split"], metrics=names)
    tables = {"real": de_mod.wilcoxon(setup["real"], control="control", normalize=True, target_sum=1e4),
              "model": de_mod.wilcoxon(setup["pred"], control="control", normalize=True, target_sum=1e4)}
    given = score(setup["preds"], setup["real"], setup["split"], metrics=names, de=tables)
    np.testing.assert_array_equal(auto["value"].to_numpy(), given["value"].to_numpy())
    # and agree with the scores from the MWU tables built here the way cell-eval's DE does;
    # p-values agree to ~1e-8, which can reorder float32-tied scores in the AUCs slightly
    ref = score(setup["preds"], setup["real"], setup["split"], metrics=names,
                de={"real": setup["de_real"], "model": setup["de_pred"]})
    exact = auto["metric"] != "roc_auc"
    np.testing.assert_allclose(auto["value"][exact].to_numpy(), ref["value"][exact].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(auto["value"].to_numpy(), ref["value"].to_numpy(), atol=2e-3)
