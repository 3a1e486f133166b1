"""Median-of-ratios size factors and the per-gene base mean (DESeq2's first step)."""

from __future__ import annotations

import numpy as np

__all__ = ["median_of_ratios", "base_mean_var"]


def median_of_ratios(counts_gm: np.ndarray) -> np.ndarray:
    """Size factors by the median-of-ratios method.

    Parameters
    ----------
    counts_gm : ndarray, shape (n_genes, n_samples)
        Counts.

    Returns
    -------
    ndarray, shape (n_samples,)
        ``exp(median_g(log y_gj - mean_j log y_gj))`` over the genes without zeros (as
        ``estimateSizeFactorsForMatrix`` does; no rescaling).

    Raises
    ------
    ValueError
        When every gene has a zero count in some sample.
    """
    with np.errstate(divide="ignore"):
        logc = np.log(counts_gm)
    lgm = logc.mean(axis=1)
    use = np.isfinite(lgm)
    if not use.any():
        raise ValueError(
            "parameter 'adata' must have at least one gene with non-zero counts in every sample "
            "(median-of-ratios size factors); got every gene with a zero in some sample"
        )
    ratios = logc[use]
    ratios -= lgm[use, None]
    return np.exp(np.median(ratios, axis=0))


def base_mean_var(counts_gm: np.ndarray, size_factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance (n - 1 denominator) of the normalised counts of each gene."""
    norm = counts_gm / size_factors[None, :]
    return norm.mean(axis=1), norm.var(axis=1, ddof=1)
