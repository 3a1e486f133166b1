"""The covariate engine's IRLS sums the count-only part of the log density through a table of
distinct counts when that saves work (many samples, few distinct counts). Its results must be
those of the plain sum over samples."""

from __future__ import annotations

import numpy as np
import pandas as pd

import simpert.de._native_covariates as nc
from simpert.de import DEDataset, deseq


def test_count_table_route_equals_the_plain_sum(monkeypatch):
    # kills _native_covariates.irls_covariates mutants of the table route (`gammaln(vals + 1.0)`
    # and its multiplicities), which the golden designs (fewer than 8 samples) never take
    rng = np.random.default_rng(9)
    m, g = 24, 60
    coldata = pd.DataFrame({"batch": [f"b{i % 2}" for i in range(m)],
                            "perturbation": ["control"] * 12 + ["A"] * 12},
                           index=[f"s{i}" for i in range(m)])
    mu = np.exp(rng.uniform(-1.0, 1.0, g))[None, :] * np.exp(rng.normal(0, 0.2, (m, 1)))
    counts = rng.poisson(mu)
    ds = DEDataset.from_arrays(counts, coldata, genes=[f"g{i}" for i in range(g)],
                               design="~ batch + perturbation")
    y = counts.T.astype(float)
    assert nc.count_table(y) is not None  # the table route is taken for these counts
    with_table = deseq(ds)
    monkeypatch.setattr(nc, "count_table", lambda y: None)
    plain = deseq(ds)
    for k in ("log2fc", "lfc_se", "pvalue"):
        np.testing.assert_allclose(with_table.matrices[k], plain.matrices[k], rtol=1e-9, atol=1e-12,
                                   equal_nan=True, err_msg=k)
