"""Blockwise distance ranks: the same values as the full matrix, whatever the block size."""

import numpy as np
import pytest

from simpert.metrics import cross_distances, own_ranks
from simpert.metrics import _vcc2026
from simpert.metrics._distance import rank_within_rows


def _data(n=37, g=25, seed=3):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, g))
    B = A + rng.normal(scale=1.5, size=(n, g))
    A[5] = B[9]  # an exact tie with another row
    A[7] = 0.0  # a zero vector (cosine similarity 0)
    targets = rng.integers(-1, g, size=n)
    return A, B, targets


@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("chunk", [1, 5, 16, 1000])
def test_own_ranks_equal_full_matrix(metric, chunk):
    A, B, t = _data()
    full = rank_within_rows(cross_distances(A, B, metric, a_targets=t, b_targets=t))
    # an independent count: a direct loop over rows
    D = cross_distances(A, B, metric, a_targets=t, b_targets=t)
    loop = np.array([np.sum(D[i] < D[i, i]) + 0.5 * (np.sum(D[i] == D[i, i]) - 1) for i in range(len(D))])
    np.testing.assert_array_equal(full, loop)
    got = own_ranks(A, B, metric, a_targets=t, b_targets=t, chunk_size=chunk)
    np.testing.assert_array_equal(got, full)


def test_own_ranks_other_own_column():
    A, B, _ = _data()
    own = np.roll(np.arange(A.shape[0]), 3)
    full = rank_within_rows(cross_distances(A, B, "l1"), own)
    np.testing.assert_array_equal(own_ranks(A, B, "l1", own=own, chunk_size=4), full)


def test_vcc2026_pds_blocks(monkeypatch):
    # PDS of cell-eval2 over blocks of predictions equals the one-block value
    rng = np.random.default_rng(0)
    P, G = 40, 30
    bulk_r = rng.gamma(2.0, size=(P + 1, G))
    bulk_p = bulk_r + rng.normal(scale=0.3, size=(P + 1, G))
    targets = rng.integers(-1, G, size=P)
    rows = np.arange(1, P + 1)
    opts = {"pds_rank_denominator": "n-1"}
    one = _vcc2026._pds_cosine(bulk_r, bulk_p, (0, bulk_p[0]), rows, rows, targets, opts)
    monkeypatch.setattr(_vcc2026, "_PDS_BLOCK", 7)
    blocks = _vcc2026._pds_cosine(bulk_r, bulk_p, (0, bulk_p[0]), rows, rows, targets, opts)
    np.testing.assert_array_equal(blocks, one)
    assert np.all((one >= 0) & (one <= 1)) and one.mean() > 0.5
