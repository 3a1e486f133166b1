"""Retrieval metrics: PerturBench's rank metric and Kernfeld's fair pairwise retrieval.

- perturbench_rank (altoslabs/perturbench, ``src/perturbench/analysis/benchmarks/``
  ``metrics.py``: ``pairwise_metric_helper``, ``rank_helper``; ``evaluation.py``:
  ``evaluate_pairwise``, ``evaluate_rank``; the default pipelines of
  ``configs/data/evaluation/default.yaml``): for the observed profile of perturbation p,
  all predicted profiles are ordered by their RMSE to it (the "average" aggregation: raw
  mean expression, no control involved); the score is the 0-based position of p's own
  prediction divided by N, the number of perturbations (0 is best, about 0.5 at random).
  PerturBench breaks ties by a random shuffle; here ties count one half (the expectation
  of that shuffle).
- perturbench_rank_cosine: the "logfc" aggregation (``aggregation.py``, ``logFC_helper``
  with pseudocount 0.1): each side's log2 fold change of mean expression against its own
  control, ``log2(q_p + 0.1) - log2(q_0 + 0.1)`` (non-finite entries set to 0, as
  ``fillna(0)`` does), predictions ordered by decreasing cosine similarity to the observed
  fold change. A zero fold-change vector has similarity 0 here (NaN in PerturBench, which
  sorts it last).
- fair_retrieval (Kernfeld, "target gene shenanigans"): for prediction i and every other
  observed perturbation j, is ``d(P_i, T_i) < d(P_i, T_j)`` when the distance ignores both
  genes i and j? The score is the mean over j (ties one half; 1 is best, 0.5 random).
  Its native target handling is "pairwise"; with ``target="include"`` nothing is ignored.
"""

from __future__ import annotations

import numpy as np

from ._distance import cross_distances, own_ranks
from ._registry import Metric, register

__all__ = ["perturbench_rank", "perturbench_rank_cosine", "fair_retrieval", "log2_fold_change"]


def _rank(real, pred, inp, metric):
    at, bt = inp.cross_targets()
    # rows: observed (truth) p; columns: predictions q (PerturBench's pairwise matrix, transposed)
    ranks = own_ranks(real, pred, metric, a_targets=at, b_targets=bt, chunk_size=inp.option("chunk_size"))
    return ranks / pred.shape[0]  # rank / N, as rank_helper divides by len(rel_ranks)


def log2_fold_change(x, ref, pseudocount: float = 0.1) -> np.ndarray:
    """PerturBench's ``logFC_helper``: ``log2(x + pc) - log2(ref + pc)``, non-finite -> 0.

    Parameters
    ----------
    x : ndarray, shape (P, G)
        Mean expression per perturbation.
    ref : ndarray, shape (G,)
        Mean expression of the control.
    pseudocount : float, default 0.1

    Returns
    -------
    ndarray, shape (P, G)
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log2(np.asarray(x, float) + pseudocount) - np.log2(np.asarray(ref, float) + pseudocount)
    out[~np.isfinite(out)] = 0.0
    return out


def perturbench_rank(inp) -> np.ndarray:
    """Relative rank of the right prediction among all predicted profiles (RMSE).

    Follows PerturBench ``metrics.py`` (``compare_perts``' "rmse", ``rank_helper``) on the
    "average" aggregation: raw predicted and observed mean profiles, no control.
    """
    return _rank(inp.real, inp.pred, inp, "l2")


def perturbench_rank_cosine(inp) -> np.ndarray:
    """Relative rank of the right prediction by cosine similarity of log fold changes.

    Follows PerturBench ``aggregation.py`` (``logFC_helper``, pseudocount 0.1) and
    ``metrics.py`` (cosine, ``rank_helper``): each side's ``log2(mean + 0.1)`` minus that
    of its own control (the reference point, ``inp.reference_real`` / ``reference_pred``).
    """
    real = log2_fold_change(inp.real, inp.reference_real)
    pred = log2_fold_change(inp.pred, inp.reference_pred)
    return _rank(real, pred, inp, "cosine")


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
                "rank of the right prediction among all predicted profiles around the truth (RMSE)",
                "PerturBench", reference=None), overwrite=True)
register(Metric("perturbench_rank_cosine", perturbench_rank_cosine, False, 0.0, frozenset({"profiles"}),
                "rank of the right prediction by cosine of log2(mean + 0.1) fold changes",
                "PerturBench", reference="control"), overwrite=True)
register(Metric("fair_retrieval", fair_retrieval, True, 1.0, frozenset({"profiles"}),
                "pairwise retrieval ignoring both perturbations' target genes", "Kernfeld",
                target="pairwise", reference="control"), overwrite=True)
