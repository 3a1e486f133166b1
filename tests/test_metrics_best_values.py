"""Best values stated by the registry where mathematics fixes them."""

from __future__ import annotations

import simpert as sp


def test_every_pearson_metric_states_best_one_and_higher_is_better():
    # kills number mutants of the `best` of correlation metrics at registration (e.g. the
    # Systema Pearson metrics): a Pearson correlation is at most 1, reached by a perfect
    # prediction, and the DRF and calibration read this value
    t = sp.metrics.list_metrics()
    pearson = t[t["description"].str.contains("Pearson", case=False)]
    assert {"pearson_delta", "systema_pearson_delta", "systema_pearson_delta_de",
            "pereggrn_pearson"} <= set(pearson.index)
    for name, row in pearson.iterrows():
        assert row["best"] == 1.0, name
        assert bool(row["higher_is_better"]), name


def test_a_perfect_prediction_scores_every_registered_best_value():
    """Prediction = observation (the same cells): every metric of the package that evaluate
    computes on log-normalised input reaches the best value its registration states, on every
    perturbation (the DRF, calibration and the scaled scores read that value). The raw-count
    vcc2026 metrics need counts and are checked against cell-eval2 elsewhere; the systematic
    variation has no best value."""
    import warnings

    import numpy as np

    a = sp.sim.screen(n_genes=60, n_perturbations=10, n_control_cells=40, cells_per_perturbation=12,
                      p_effect=0.3, effect_size=1.5, rng=11)
    perts = sorted(set(a.obs["perturbation"]) - {"control"})
    train = a[a.obs["perturbation"].isin(["control"] + perts[:4])].copy()
    test = a[a.obs["perturbation"].isin(["control"] + perts[4:])].copy()
    reg = sp.metrics.list_metrics()
    names = [n for n in reg.index if getattr(sp.metrics.get(n).fn, "__module__", "").startswith("simpert.")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sp.metrics.evaluate(test.copy(), test, metrics=names, train=train, n_boot=0)
    t = res.per_perturbation
    t = t[t["model"] == "prediction"]
    raw = {n for n in names if sp.metrics.get(n).source == "cell-eval2"}  # vcc2026: raw counts only
    errors = {e["metric"] for e in res.errors if e["model"] == "prediction"}
    assert errors <= raw, errors
    checked = 0
    for metric, g in t.groupby("metric"):
        best = reg.loc[metric, "best"]
        if np.isnan(best):
            assert metric == "systematic_variation"
            continue
        v = g["value"].to_numpy(dtype=float)
        # NaN where a metric is undefined (a Spearman correlation over fewer than two DE genes)
        assert np.isfinite(v).sum() >= 3, metric
        np.testing.assert_allclose(v[np.isfinite(v)], best, rtol=0, atol=1e-9, err_msg=metric)
        # and never beyond it, not even by rounding (a correlation of 1 + 2e-16 breaks arccos
        # or Fisher's z downstream)
        if reg.loc[metric, "higher_is_better"] is True and best == 1.0:
            assert (v[np.isfinite(v)] <= 1.0).all(), metric
        checked += 1
    assert checked >= 45, checked
