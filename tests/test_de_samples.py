"""Which AnnData rows DE takes as samples and which it sums as cells."""

import numpy as np
import pandas as pd
import pytest

import simpert as sp
from simpert.de._dataset import _pseudobulk_keys


def test_keys_table():
    cells = pd.DataFrame({"perturbation": ["a", "a", "b", "b"], "replicate": [0, 0, 0, 0]})
    assert _pseudobulk_keys(cells, "perturbation") == ("perturbation", "replicate")
    by_batch = cells.assign(batch=["x", "y", "x", "y"])
    assert _pseudobulk_keys(by_batch, "perturbation", ["batch"]) is None  # one row per (level, batch)
    assert _pseudobulk_keys(by_batch, "perturbation") == ("perturbation", "replicate")
    assert _pseudobulk_keys(cells.assign(n_cells=5), "perturbation") is None  # a pseudobulk
    assert _pseudobulk_keys(cells.drop(columns="replicate"), "perturbation") is None


def test_batch_pseudobulk_with_covariate():
    a = sp.sim.screen(n_genes=120, n_perturbations=4, n_control_cells=80, cells_per_perturbation=60,
                      n_batches=3, batch_sd=0.4, rng=2)
    pb = sp.sim.pseudobulk(a, by=("perturbation", "batch"))
    # the samples keep a cell-level replicate label in some layouts: the batch covariate makes them unique
    pb.obs["replicate"] = 0
    res = sp.de.deseq(pb, design="~ batch + perturbation", control="control")
    t = res.table
    assert t["perturbation"].nunique() == 4 and np.isfinite(t["log2fc"]).mean() > 0.9


def test_numeric_covariate_does_not_name_samples():
    cells = pd.DataFrame({"perturbation": ["a", "a", "b", "b"], "replicate": [0, 0, 0, 0],
                          "quality": [0.1, 0.2, 0.3, 0.4]})
    assert _pseudobulk_keys(cells, "perturbation", ["quality"]) == ("perturbation", "replicate")
