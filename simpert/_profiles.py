"""Log-normalised expression profiles: the representation predictions and metrics share.

A profile of a group of cells is the mean over its cells of ``log1p(target_sum * x / sum(x))``
(cell-eval's and scanpy's convention: normalise each cell to ``target_sum`` counts, log1p,
then average). Pseudobulk samples are treated the same way, one sample per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["DEFAULT_TARGET_SUM", "lognormalize", "group_profiles", "counts_matrix", "representation", "expression"]

DEFAULT_TARGET_SUM = 1e4


def counts_matrix(adata):
    """Return the count matrix of ``adata`` (``layers['counts']`` if present, else ``.X``)."""
    if "counts" in getattr(adata, "layers", {}):
        return adata.layers["counts"]
    return adata.X


def _is_counts(x) -> bool:
    data = x.data if sp.issparse(x) else np.asarray(x)
    if data.dtype.kind in "iu":
        return True
    if data.dtype.kind != "f":
        return False
    flat = np.ravel(data)[:200_000]
    return bool(np.all(flat >= 0) and np.all(flat == np.round(flat)))


def representation(adata) -> str:
    """How profiles are formed for ``adata``: ``"lognorm"`` or ``"raw"``.

    ``"lognorm"``: mean over cells (or samples) of ``log1p(target_sum * x / total)``, for
    count data. ``"raw"``: the plain mean of ``X``, for data already on an additive scale:
    every ``noise_only`` AnnData (as in the PEREGGRN design, where a profile is the sample
    itself), a ``var_network`` AnnData with continuous output, and any AnnData whose ``X``
    is not a matrix of non-negative integers.

    Parameters
    ----------
    adata : AnnData

    Returns
    -------
    str
        ``"lognorm"`` or ``"raw"``.
    """
    meta = adata.uns.get("simpert", {}) if hasattr(adata, "uns") else {}
    kind = meta.get("kind") if hasattr(meta, "get") else None
    if kind == "noise_only":
        return "raw"
    if kind == "var_network":
        params = meta.get("params", {})
        out = params.get("output", "continuous") if hasattr(params, "get") else "continuous"
        if out == "continuous":
            return "raw"
    return "lognorm" if _is_counts(counts_matrix(adata)) else "raw"


def expression(adata, rows=None, *, target_sum: float = DEFAULT_TARGET_SUM, kind: str | None = None):
    """Per-observation expression in the profile representation.

    Parameters
    ----------
    adata : AnnData
    rows : array of int or bool, optional
        Observations to keep (all by default).
    target_sum : float, default 1e4
        Normalisation total for count data.
    kind : {"lognorm", "raw"}, optional
        Representation; default :func:`representation` of ``adata``.

    Returns
    -------
    ndarray or scipy.sparse.csr_matrix of float64
        Log-normalised counts, or ``X`` as float for raw data.
    """
    kind = representation(adata) if kind is None else kind
    x = counts_matrix(adata) if kind == "lognorm" else adata.X
    if rows is not None:
        x = x[rows]
    if kind == "lognorm":
        return lognormalize(x, target_sum=target_sum)
    return sp.csr_matrix(x, dtype=np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)


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


def group_profiles(adata, by: str = "perturbation", *, target_sum: float = DEFAULT_TARGET_SUM,
                   kind: str | None = None) -> pd.DataFrame:
    """Mean profile per level of ``adata.obs[by]`` (log-normalised counts, or raw ``X``).

    Parameters
    ----------
    adata : AnnData
        Cells or pseudobulk samples with counts.
    by : str, default "perturbation"
        Column of ``adata.obs`` that defines the groups.
    target_sum : float, default 1e4
        Normalisation total.
    kind : {"lognorm", "raw"}, optional
        Representation; default :func:`representation` of ``adata`` (raw means for
        noise-only and continuous network data).

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
    logx = expression(adata, target_sum=target_sum, kind=kind)
    sums = ind @ logx
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    return pd.DataFrame(sums / sizes[:, None], index=pd.Index(labels, name=by), columns=adata.var_names.copy())
