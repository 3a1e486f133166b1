"""Average ranks within groups (the rank step of the DE metrics) against scipy's rankdata."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from simpert.metrics._de_metrics import _group_ranks


def test_group_ranks_with_ties_match_scipy_per_group():
    # kills _de_metrics._group_ranks mutants of the tie average `(first + last) / 2` and of the
    # run boundaries: ranks of each group, ties averaged, as scipy ranks them one group at a time
    rng = np.random.default_rng(1)
    P = 5
    p = rng.integers(0, P, 200)
    v = rng.integers(0, 6, 200).astype(float)  # many ties
    got = _group_ranks(p, v, P)
    for k in range(P):
        sel = p == k
        np.testing.assert_array_equal(got[sel], rankdata(v[sel], method="average"))
    # a group holding a NaN gets NaN ranks; the others are unaffected
    v2 = v.copy()
    v2[np.flatnonzero(p == 2)[0]] = np.nan
    got2 = _group_ranks(p, v2, P)
    assert np.isnan(got2[p == 2]).all()
    np.testing.assert_array_equal(got2[p != 2], got[p != 2])
