"""Metrics read counts and log-normalised input alike (cell-eval's detection)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import simpert as sp
from simpert._profiles import lognormalize

DE_METRICS = ["overlap_at_N", "de_sig_genes_recall", "de_direction_match", "precision_at_N"]


@pytest.fixture(scope="module")
def case():
    adata = sp.sim.screen(n_genes=120, n_perturbations=8, n_control_cells=150, cells_per_perturbation=60,
                          p_effect=0.2, effect_size=1.5, rng=5)
    split = sp.predict.split(adata, test_fraction=0.5, rng=0)
    preds = sp.predict.make(adata, split, ["technical_duplicate", "mean"], rng=0, cells=True)
    return adata, split, preds


def _lognorm(a):
    out = ad.AnnData(X=lognormalize(a.X, target_sum=1e4), obs=a.obs.copy(), var=a.var.copy())
    return out


def test_de_metrics_equal_on_counts_and_on_log_normalised_cells(case):
    adata, split, preds = case
    on_counts = sp.metrics.score(preds, adata, split, metrics=DE_METRICS)
    logged = {n: sp.predict.Prediction(name=n, profiles=p.profiles, control=p.control, cells=_lognorm(p.cells))
              for n, p in preds.items()}
    on_logs = sp.metrics.score(sp.predict.Predictions(logged), _lognorm(adata), split, metrics=DE_METRICS)
    np.testing.assert_allclose(on_logs["value"].to_numpy(), on_counts["value"].to_numpy(), rtol=1e-9,
                               atol=1e-12, equal_nan=True)
    # the predictions are not trivially perfect: the check can fail
    assert on_counts.groupby("predictor")["value"].mean().nunique() == 2
