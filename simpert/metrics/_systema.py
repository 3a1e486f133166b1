"""Systema's metrics (Vinas Torne et al., Nature Biotechnology 2025; mlbio-epfl/systema).

The reference point is the perturbed centroid ``mu`` = unweighted mean of the training
perturbations' profiles, so that the systematic response shared by all perturbations
does not count as a correct prediction.

- systema_pearson_delta: ``pearson(q_p - mu, r_p - mu)`` over all genes (PearsonDelta).
- systema_pearson_delta_de: the same over the top ``n_de`` (20) genes by
  ``|r_p - r_0|`` (``get_topk_de_gene_ids`` of Systema's ``eval_utils``: largest absolute
  change from control).
- systema_centroid_accuracy: ``#{q != p : d(q_p, r_q) > d(q_p, r_p)} / (N - 1)`` with the
  Euclidean distance between deltas and a strict comparison (random is about 0.5).
- systematic_variation: ``cos(r_p - r_0, mu - r_0)`` per perturbation (its mean over
  perturbations is Systema's degree of systematic variation). It describes the data,
  not the prediction: orientation and best value are None, and it ignores the
  ``reference`` option of ``score`` (mu is always the training centroid).
"""

from __future__ import annotations

import numpy as np

from ._distance import cross_distances
from ._registry import Metric, register
from ._stats import row_cosine, row_pearson, top_k_mask

__all__ = [
    "systema_pearson_delta",
    "systema_pearson_delta_de",
    "systema_centroid_accuracy",
    "systematic_variation",
    "top_change_mask",
]


def top_change_mask(inp, n: int | None = None) -> np.ndarray:
    """(P, G) mask of the ``n`` genes with the largest ``|r_p - r_0|`` per perturbation."""
    n = int(inp.option("n_de") if n is None else n)
    a = np.abs(inp.delta_real_control)
    if inp.gene_mask is not None:
        a = np.where(inp.gene_mask, a, -np.inf)
    mask = top_k_mask(a, n)
    if inp.gene_mask is not None:
        mask &= inp.gene_mask
    return mask


def systema_pearson_delta(inp) -> np.ndarray:
    """Centered Pearson: correlation of deltas against the perturbed centroid."""
    return row_pearson(inp.delta_pred, inp.delta_real, inp.gene_mask)


def systema_pearson_delta_de(inp) -> np.ndarray:
    """Centered Pearson over the top-n genes by observed change from control."""
    return row_pearson(inp.delta_pred, inp.delta_real, top_change_mask(inp))


def systema_centroid_accuracy(inp) -> np.ndarray:
    """Fraction of other perturbations farther from the prediction than the right one."""
    at, bt = inp.cross_targets()
    D = cross_distances(inp.delta_pred, inp.delta_real, "sqeuclidean", a_targets=at,
                        b_targets=bt, chunk_size=inp.option("chunk_size"))
    N = D.shape[0]
    if N < 2:
        return np.full(N, np.nan)
    own = np.diag(D)[:, None]
    return (D > own).sum(axis=1) / (N - 1)


def systematic_variation(inp) -> np.ndarray:
    """Cosine of each observed delta (vs control) with the centroid's delta (vs control).

    A descriptor of the data: the centroid is always the mean of the training profiles,
    whatever reference point ``score(reference=...)`` sets for the other metrics (forcing
    the control as reference would otherwise zero the centroid's delta).
    """
    if inp.train is None or len(inp.train) == 0:
        raise ValueError("systematic_variation needs training perturbations in the split; got none")
    shift = np.asarray(inp.train, dtype=float).mean(axis=0) - inp.real_control
    return row_cosine(inp.real - inp.real_control, np.broadcast_to(shift, inp.real.shape).copy(),
                      inp.gene_mask)


_SRC = "Systema"
register(Metric("systema_pearson_delta", systema_pearson_delta, True, 1.0, frozenset({"profiles", "train"}),
                "Pearson correlation of deltas against the perturbed centroid", _SRC,
                reference="centroid"), overwrite=True)
register(Metric("systema_pearson_delta_de", systema_pearson_delta_de, True, 1.0, frozenset({"profiles", "train"}),
                "centered Pearson over the top-20 genes by observed change", _SRC,
                reference="centroid"), overwrite=True)
register(Metric("systema_centroid_accuracy", systema_centroid_accuracy, True, 1.0, frozenset({"profiles", "train"}),
                "fraction of other perturbations farther from the prediction than its own", _SRC,
                reference="centroid"), overwrite=True)
register(Metric("systematic_variation", systematic_variation, None, None, frozenset({"profiles", "train"}),
                "cosine of the observed delta with the centroid shift (data descriptor)", _SRC,
                reference="centroid"), overwrite=True)
