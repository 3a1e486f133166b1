"""Retrieval metrics: PerturBench's rank metric and Kernfeld's fair pairwise retrieval.

- perturbench_rank (altoslabs/perturbench, ``rank_helper``): for the observed profile of
  perturbation p, all predictions are ordered by their distance to it (RMSE, that is the
  Euclidean distance of the deltas); the score is the 0-based position of p's own
  prediction divided by N (0 is best, about 0.5 at random). PerturBench breaks ties by a
  random shuffle; here ties count one half (the expectation of that shuffle).
  perturbench_rank_cosine uses the cosine distance of the deltas.
- fair_retrieval (Kernfeld, "target gene shenanigans"): for prediction i and every other
  observed perturbation j, is ``d(P_i, T_i) < d(P_i, T_j)`` when the distance ignores both
  genes i and j? The score is the mean over j (ties one half; 1 is best, 0.5 random).
  Its native target handling is "pairwise"; with ``target="include"`` nothing is ignored.
"""

from __future__ import annotations

import numpy as np

from ._distance import cross_distances, rank_within_rows
from ._registry import Metric, register

__all__ = ["perturbench_rank", "perturbench_rank_cosine", "fair_retrieval"]


def _rank(inp, metric):
    at, bt = inp.cross_targets()
    # rows: observed (truth) p; columns: predictions q
    D = cross_distances(inp.delta_real, inp.delta_pred, metric, a_targets=at, b_targets=bt,
                        chunk_size=inp.option("chunk_size"))
    return rank_within_rows(D) / D.shape[1]


def perturbench_rank(inp) -> np.ndarray:
    """Relative rank of the right prediction among all predictions (Euclidean / RMSE)."""
    return _rank(inp, "l2")


def perturbench_rank_cosine(inp) -> np.ndarray:
    """Relative rank of the right prediction among all predictions (cosine distance)."""
    return _rank(inp, "cosine")


def fair_retrieval(inp, metric: str = "sqeuclidean") -> np.ndarray:
    """Kernfeld's fair retrieval score, ignoring genes i and j in each comparison."""
    P, T = inp.delta_pred, inp.delta_real
    N = P.shape[0]
    if N < 2:
        return np.full(N, np.nan)
    f = (lambda x, y: np.abs(x - y)) if metric == "l1" else (lambda x, y: (x - y) ** 2)
    dist = "l1" if metric == "l1" else "sqeuclidean"
    t = inp.targets if inp.target in ("exclude", "pairwise") else np.full(N, -1)
    D = cross_distances(P, T, dist, a_targets=t, b_targets=t, chunk_size=inp.option("chunk_size"))
    # own distance with genes i and j removed, for every (i, j)
    own_full = f(P, T).sum(axis=1)
    rows = np.arange(N)
    ti = t
    own_i = np.where(ti >= 0, f(P[rows, np.maximum(ti, 0)], T[rows, np.maximum(ti, 0)]), 0.0)
    tj = np.maximum(t, 0)
    extra = f(P[:, tj], T[:, tj])  # (i, j): gene t_j in pair (P_i, T_i)
    extra = np.where((t[None, :] >= 0) & (t[None, :] != ti[:, None]), extra, 0.0)
    E = own_full[:, None] - own_i[:, None] - extra
    off = ~np.eye(N, dtype=bool)
    score = (E < D) + 0.5 * (E == D)
    return (score * off).sum(axis=1) / (N - 1)


register(Metric("perturbench_rank", perturbench_rank, False, 0.0, frozenset({"profiles"}),
                "rank of the right prediction among all predictions around the truth (RMSE)",
                "PerturBench", reference="control"), overwrite=True)
register(Metric("perturbench_rank_cosine", perturbench_rank_cosine, False, 0.0, frozenset({"profiles"}),
                "rank of the right prediction among all predictions (cosine of deltas)",
                "PerturBench", reference="control"), overwrite=True)
register(Metric("fair_retrieval", fair_retrieval, True, 1.0, frozenset({"profiles"}),
                "pairwise retrieval ignoring both perturbations' target genes", "Kernfeld",
                target="pairwise", reference="control"), overwrite=True)
