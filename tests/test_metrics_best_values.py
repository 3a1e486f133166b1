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
