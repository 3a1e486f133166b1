"""Systema's metrics (Vinas Torne et al., Nature Biotechnology 2025; mlbio-epfl/systema).

The reference point is the perturbed centroid ``mu`` = unweighted mean of the training
perturbations' profiles, so that the systematic response shared by all perturbations
does not count as a correct prediction.

- systema_pearson_delta: ``pearson(q_p - mu, r_p - mu)`` over all genes (PearsonDelta).
- systema_pearson_delta_de: the same over the top 20 DE genes of each perturbation,
  GEARS' ``top_non_dropout_de_20`` (Systema ``evaluation/eval_utils.py`` reads
  ``adata.uns["top_non_dropout_de_20"]``, made by GEARS ``gears/data_utils.py``,
  ``get_DE_genes`` and ``get_dropout_non_zero_genes``): scanpy's
  ``rank_genes_groups(method="t-test", reference=control, rankby_abs=True)`` on the observed
  log-normalised cells, genes ordered by decreasing |t|, genes that drop out (mean 0 in the
  perturbation, non-zero in the control) removed, the first ``n_de`` (20) kept. See
  :func:`gears_top_de`.
- systema_centroid_accuracy: ``#{q != p : d(q_p, r_q) > d(q_p, r_p)} / (N - 1)`` with the
  Euclidean distance between deltas and a strict comparison (random is about 0.5).
- systematic_variation: ``cos(r_p - r_0, mu - r_0)`` per perturbation (its mean over
  perturbations is Systema's degree of systematic variation). It describes the data,
  not the prediction: orientation and best value are None, and it ignores the
  ``reference`` option of ``score`` (mu is always the training centroid).
"""

from __future__ import annotations

import numpy as np

import scipy.sparse as sp

from ._distance import distance_blocks
from ._registry import Metric, register
from ._stats import row_cosine, row_pearson, top_k_mask

__all__ = [
    "systema_pearson_delta",
    "systema_pearson_delta_de",
    "systema_centroid_accuracy",
    "systematic_variation",
    "top_change_mask",
    "welch_t_vs_control",
    "gears_top_de",
]


def _group_moments(X, group, n_groups):
    """Per-group means and unbiased variances of the rows of ``X`` (float64), and sizes.

    Rows with ``group`` outside ``0 .. n_groups - 1`` are ignored. Variances follow scanpy's
    ``_get_mean_var`` (mean of squares minus squared mean, times n / (n - 1)).
    """
    group = np.asarray(group)
    keep = np.flatnonzero((group >= 0) & (group < n_groups))
    ind = sp.csr_matrix((np.ones(keep.size), (group[keep], keep)), shape=(n_groups, group.size))
    n = np.asarray(ind.sum(axis=1)).ravel()
    if sp.issparse(X):
        Xs = sp.csr_matrix(X, dtype=np.float64)
        s1 = np.asarray((ind @ Xs).todense())
        s2 = np.asarray((ind @ Xs.multiply(Xs).tocsr()).todense())
    else:
        Xd = np.asarray(X, dtype=np.float64)
        s1 = ind @ Xd
        s2 = ind @ (Xd * Xd)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n[:, None]
        var = (s2 / n[:, None] - mean**2) * (n / (n - 1))[:, None]
    return mean, var, n


def welch_t_vs_control(cells, n_perturbations: int):
    """Welch t-statistic of every test perturbation's cells against the control cells.

    scanpy ``tl.rank_genes_groups(method="t-test", reference=<control>)``:
    ``(m_p - m_c) / sqrt(v_p / n_p + v_c / n_c)`` with unbiased variances; NaN (a gene
    constant at the same value on both sides, or a group of one cell) becomes 0, as in
    scanpy.

    Parameters
    ----------
    cells : CellSet
        Log-normalised cells; ``group`` codes test perturbations (0 .. P-1) and controls (-1).
    n_perturbations : int
        P.

    Returns
    -------
    t : ndarray, shape (P, G)
    mean_pert, mean_ctrl : ndarray, shapes (P, G) and (G,)
        Mean expression of each perturbation's cells and of the control cells.
    """
    group = np.asarray(cells.group)
    P = int(n_perturbations)
    code = np.where(group == -1, P, group)
    mean, var, n = _group_moments(cells.X, code, P + 1)
    mc, vc, nc = mean[P], var[P], n[P]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (mean[:P] - mc) / np.sqrt(var[:P] / n[:P, None] + vc / nc)
    t[np.isnan(t)] = 0.0
    return t, mean[:P], mc


def gears_top_de(cells, n_perturbations: int, n: int = 20, gene_mask=None) -> np.ndarray:
    """GEARS' ``top_non_dropout_de_20``: the top-``n`` non-dropout DE genes per perturbation.

    Genes are ordered by decreasing ``|t|`` of :func:`welch_t_vs_control` (ties by gene
    position), genes that drop out (mean 0 over the perturbation's cells while the control
    mean is not 0) are removed, and the first ``n`` are kept (GEARS ``gears/data_utils.py``,
    ``get_dropout_non_zero_genes``: ``non_dropouts = non_zero + true_zeros``).

    Parameters
    ----------
    cells : CellSet
        Observed log-normalised cells (test perturbations and controls).
    n_perturbations : int
    n : int, default 20
    gene_mask : ndarray of bool, shape (P, G), optional
        Genes allowed per perturbation (the target gene dropped when it is excluded).

    Returns
    -------
    ndarray of bool, shape (P, G)
    """
    t, mp, mc = welch_t_vs_control(cells, n_perturbations)
    P, G = t.shape
    dropout = (mp == 0) & (mc != 0)[None, :]
    key = np.where(dropout, -1.0, np.abs(t))  # dropouts sort after every candidate
    if gene_mask is not None:
        key = np.where(gene_mask, key, -2.0)
    order = np.argsort(-key, axis=1, kind="stable")
    out = np.zeros((P, G), dtype=bool)
    rows = np.arange(P)[:, None]
    out[rows, order[:, : int(n)]] = True
    out &= ~dropout
    if gene_mask is not None:
        out &= gene_mask
    return out


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
    """Centered Pearson over each perturbation's top-20 DE genes (GEARS' ``top_non_dropout_de_20``).

    Follows Systema ``evaluation/pearson_delta_reference_metrics.py`` (``corr_20de_allpert``)
    with the genes of GEARS ``gears/data_utils.py`` (:func:`gears_top_de`, computed on
    ``inp.real_cells``, the observed cells; ``n_de`` genes, default 20). The genes are
    computed once per observed data set and reused for every prediction (``inp.cache``).
    """
    if inp.real_cells is None:
        raise ValueError("systema_pearson_delta_de needs the observed cells (real_cells) to rank DE genes "
                         "against the control cells, as GEARS does")
    n = int(inp.option("n_de"))
    cache = inp.cache if inp.cache is not None else {}
    key = ("gears_top_de", n, inp.gene_mask is None or inp.gene_mask.tobytes())
    hit = cache.get(key)
    if hit is None or hit[0] is not inp.real_cells:
        hit = (inp.real_cells, gears_top_de(inp.real_cells, inp.n_perturbations, n, inp.gene_mask))
        cache[key] = hit
    return row_pearson(inp.delta_pred, inp.delta_real, hit[1])


def systema_centroid_accuracy(inp) -> np.ndarray:
    """Fraction of other perturbations farther from the prediction than the right one."""
    at, bt = inp.cross_targets()
    N = inp.delta_pred.shape[0]
    if N < 2:
        return np.full(N, np.nan)
    out = np.empty(N)
    for rows, d in distance_blocks(inp.delta_pred, inp.delta_real, "sqeuclidean", a_targets=at,
                                   b_targets=bt, chunk_size=inp.option("chunk_size")):
        own = d[np.arange(rows.size), rows][:, None]
        out[rows] = (d > own).sum(axis=1) / (N - 1)
    return out


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
register(Metric("systema_pearson_delta_de", systema_pearson_delta_de, True, 1.0,
                frozenset({"profiles", "train", "real_cells"}),
                "centered Pearson over GEARS' top-20 non-dropout DE genes (t-test vs control)", _SRC,
                reference="centroid"), overwrite=True)
register(Metric("systema_centroid_accuracy", systema_centroid_accuracy, True, 1.0, frozenset({"profiles", "train"}),
                "fraction of other perturbations farther from the prediction than its own", _SRC,
                reference="centroid"), overwrite=True)
register(Metric("systematic_variation", systematic_variation, None, None, frozenset({"profiles", "train"}),
                "cosine of the observed delta with the centroid shift (data descriptor)", _SRC,
                reference="centroid"), overwrite=True)
