"""Log-normalised expression profiles: the representation predictions and metrics share.

A profile of a group of cells is the mean over its cells of ``log1p(target_sum * x / sum(x))``
(cell-eval's and scanpy's convention: normalise each cell to ``target_sum`` counts, log1p,
then average). Pseudobulk samples are treated the same way, one sample per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["DEFAULT_TARGET_SUM", "lognormalize", "group_profiles", "counts_matrix"]

DEFAULT_TARGET_SUM = 1e4


def counts_matrix(adata):
    """Return the count matrix of ``adata`` (``layers['counts']`` if present, else ``.X``)."""
    if "counts" in getattr(adata, "layers", {}):
        return adata.layers["counts"]
    return adata.X


def lognormalize(counts, *, target_sum: float = DEFAULT_TARGET_SUM):
    """Normalise each row to ``target_sum`` and apply log1p.

    Parameters
    ----------
    counts : ndarray or scipy.sparse matrix, shape (n_obs, n_genes)
        Non-negative counts.
    target_sum : float, default 1e4
        Total each row is scaled to.

    Returns
    -------
    ndarray or scipy.sparse.csr_matrix of float64
        Same sparsity as the input; rows with zero total stay zero.
    """
    if sp.issparse(counts):
        m = sp.csr_matrix(counts, dtype=np.float64, copy=True)
        totals = np.asarray(m.sum(axis=1)).ravel()
        scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
        m.data *= np.repeat(scale, np.diff(m.indptr))
        np.log1p(m.data, out=m.data)
        return m
    x = np.asarray(counts, dtype=np.float64)
    totals = x.sum(axis=1, keepdims=True)
    scale = np.divide(target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    return np.log1p(x * scale)


def group_profiles(adata, by: str = "perturbation", *, target_sum: float = DEFAULT_TARGET_SUM) -> pd.DataFrame:
    """Mean log-normalised profile per level of ``adata.obs[by]``.

    Parameters
    ----------
    adata : AnnData
        Cells or pseudobulk samples with counts.
    by : str, default "perturbation"
        Column of ``adata.obs`` that defines the groups.
    target_sum : float, default 1e4
        Normalisation total.

    Returns
    -------
    DataFrame, shape (n_groups, n_genes)
        Index: group labels in category order (observed levels only); columns: gene names.
    """
    if by not in adata.obs:
        raise KeyError(f"parameter 'by' must name a column of adata.obs; got {by!r}")
    codes = pd.Categorical(adata.obs[by])
    present = codes.remove_unused_categories()
    labels = present.categories
    ind = sp.csr_matrix(
        (np.ones(adata.n_obs), (present.codes, np.arange(adata.n_obs))),
        shape=(len(labels), adata.n_obs),
    )
    sizes = np.asarray(ind.sum(axis=1)).ravel()
    logx = lognormalize(counts_matrix(adata), target_sum=target_sum)
    sums = ind @ logx
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    return pd.DataFrame(sums / sizes[:, None], index=pd.Index(labels, name=by), columns=adata.var_names.copy())
