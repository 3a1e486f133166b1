"""The validated input of a differential-expression fit: counts and a one-factor design.

:class:`DEDataset` follows PyDESeq2's split between a dataset (counts and metadata, checked
once) and the statistics computed from it. Samples are reordered so that the reference
(control) level comes first and each level's samples are contiguous, which lets every step
of the native engine work on per-level segments with ``numpy.add.reduceat``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import Instance, check, fail

__all__ = ["DEDataset", "as_dataset"]


def _as_count_matrix(X, name: str) -> np.ndarray:
    """Dense float64 samples x genes matrix of validated counts."""
    if sp.issparse(X):
        X = X.toarray()
    try:
        arr = np.asarray(X)
    except Exception:  # pragma: no cover - exotic inputs
        fail(name, "a numeric matrix of counts", type(X).__name__, exc=TypeError)
    if arr.ndim != 2:
        fail(name, "a 2-d matrix of counts (samples x genes)", arr)
    if arr.dtype.kind not in "biuf":
        fail(name, "a numeric matrix of counts", f"dtype {arr.dtype}", exc=TypeError)
    arr = arr.astype(np.float64, copy=False)
    if np.isnan(arr).any():
        fail(name, "a count matrix without NaN", f"{int(np.isnan(arr).sum())} NaN values")
    if not np.isfinite(arr).all():
        fail(name, "a count matrix of finite values", "infinite values")
    if (arr < 0).any():
        fail(name, "a count matrix of non-negative values", f"minimum {arr.min():g}")
    if not np.array_equal(arr, np.round(arr)):
        bad = arr[arr != np.round(arr)]
        fail(name, "a count matrix of integers", f"non-integer values such as {bad[0]:g}")
    return arr


@dataclass(frozen=True, eq=False)
class DEDataset:
    """Counts and a one-factor design, validated and ordered for fitting.

    Parameters
    ----------
    counts : ndarray, shape (n_samples, n_genes)
        Integer counts (float64 storage), samples ordered by level, reference level first.
    samples : pandas.Index
        Sample names, in the same order.
    genes : pandas.Index
        Gene names.
    levels : tuple of str
        Factor levels; ``levels[0]`` is the reference (control).
    level_of_sample : ndarray of int, shape (n_samples,)
        Level code of each sample (non-decreasing).
    design : str
        Name of the factor (the ``obs`` column).

    Notes
    -----
    Build one with :meth:`from_anndata` or :meth:`from_arrays`; both check the counts (no
    NaN, no negative or non-integer values), the design (a control level with samples, at
    least two levels, at least one level with replicates) and the metadata (one row per
    sample). A level with a single sample is allowed, as in DESeq2: it contributes a
    coefficient and a test but no information about the dispersion.
    """

    counts: np.ndarray
    samples: pd.Index
    genes: pd.Index
    levels: tuple
    level_of_sample: np.ndarray
    design: str = "perturbation"

    # ------------------------------------------------------------------ derived shapes
    @property
    def n_samples(self) -> int:
        """Number of samples (``m``)."""
        return self.counts.shape[0]

    @property
    def n_genes(self) -> int:
        """Number of genes."""
        return self.counts.shape[1]

    @property
    def n_levels(self) -> int:
        """Number of factor levels (``p``, the number of model coefficients)."""
        return len(self.levels)

    @property
    def control(self) -> str:
        """The reference level."""
        return self.levels[0]

    @property
    def perturbations(self) -> tuple:
        """The non-reference levels, in order."""
        return self.levels[1:]

    @property
    def level_sizes(self) -> np.ndarray:
        """Samples per level."""
        return np.bincount(self.level_of_sample, minlength=self.n_levels)

    @property
    def level_starts(self) -> np.ndarray:
        """Index of each level's first sample (for ``numpy.add.reduceat``)."""
        sizes = self.level_sizes
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(cls, counts, obs: pd.DataFrame, *, design: str = "perturbation",
                    control: str = "control", genes=None) -> "DEDataset":
        """Build a dataset from a samples x genes count matrix and its sample table.

        Parameters
        ----------
        counts : array-like or sparse matrix, shape (n_samples, n_genes)
            Integer counts.
        obs : pandas.DataFrame
            One row per sample, with the factor column ``design``.
        design : str, default "perturbation"
            Column of ``obs`` holding the factor.
        control : str, default "control"
            Reference level.
        genes : sequence of str, optional
            Gene names (default ``g0``, ``g1``, ...).

        Returns
        -------
        DEDataset
        """
        check("obs", obs, Instance((pd.DataFrame,), "a pandas DataFrame"))
        check("design", design, Instance((str,), "a column name (str)"))
        check("control", control, Instance((str,), "a level name (str)"))
        X = _as_count_matrix(counts, "counts")
        if X.shape[0] != len(obs):
            fail("obs", f"a table with one row per sample ({X.shape[0]} rows)", f"{len(obs)} rows")
        if design not in obs.columns:
            fail("design", f"a column of obs ({', '.join(map(str, obs.columns))})", design)
        col = obs[design]
        if col.isna().any():
            fail("design", f"a column without missing values; obs[{design!r}] has", f"{int(col.isna().sum())} missing")
        labels = col.astype(str).to_numpy()
        if isinstance(col.dtype, pd.CategoricalDtype):
            order = [str(c) for c in col.cat.categories if str(c) in set(labels)]
        else:
            order = list(pd.unique(labels))
        if control not in order:
            fail("control", f"a level of obs[{design!r}] with samples (levels: {', '.join(order[:10])}"
                 + (", ..." if len(order) > 10 else "") + ")", control)
        levels = [control] + [lv for lv in order if lv != control]
        if len(levels) < 2:
            fail("obs", f"a design with at least one level besides the control in obs[{design!r}]", levels)
        code_of = {lv: i for i, lv in enumerate(levels)}
        codes = np.fromiter((code_of[x] for x in labels), dtype=np.intp, count=len(labels))
        perm = np.argsort(codes, kind="stable")
        if X.shape[0] <= len(levels):
            fail("obs", "a design with replicates (more samples than levels, as DESeq2 requires)",
                 f"{X.shape[0]} samples for {len(levels)} levels")
        if genes is None:
            genes = [f"g{i}" for i in range(X.shape[1])]
        genes = pd.Index([str(g) for g in genes])
        if len(genes) != X.shape[1]:
            fail("genes", f"a sequence of {X.shape[1]} gene names", f"{len(genes)} names")
        if genes.has_duplicates:
            fail("genes", "unique gene names", f"duplicates such as {genes[genes.duplicated()][0]!r}")
        if X.shape[1] < 2:
            fail("counts", "a matrix with at least 2 genes", X.shape[1])
        samples = pd.Index([str(s) for s in obs.index])[perm]
        if samples.has_duplicates:
            samples = pd.Index([f"s{i}" for i in range(len(samples))])
        return cls(counts=np.ascontiguousarray(X[perm]), samples=samples, genes=genes,
                   levels=tuple(levels), level_of_sample=codes[perm], design=design)

    @classmethod
    def from_anndata(cls, adata: ad.AnnData, *, design: str = "perturbation", control: str = "control",
                     layer: str | None = None, pseudobulk: bool | None = None) -> "DEDataset":
        """Build a dataset from an AnnData of samples (or cells, which are pseudobulked).

        Parameters
        ----------
        adata : AnnData
            Integer counts in ``layers["counts"]`` when present (or ``layers[layer]``), else
            ``.X``; the factor in ``obs[design]``.
        design : str, default "perturbation"
            Column of ``obs`` holding the factor.
        control : str, default "control"
            Reference level.
        layer : str, optional
            Layer with the counts.
        pseudobulk : bool or None, default None
            Sum cells into samples first. ``None`` decides from ``obs``: when a
            ``replicate`` column exists and some (level, replicate) pair has more than one
            row, rows are summed per (level, replicate); without ``replicate`` but with a
            ``guide`` column that repeats within a level, per (level, guide); otherwise the
            rows are taken as samples.

        Returns
        -------
        DEDataset
        """
        check("adata", adata, Instance((ad.AnnData,), "an AnnData"))
        if layer is None:
            layer = "counts" if "counts" in adata.layers else None
        elif layer not in adata.layers:
            fail("layer", f"None or a layer of adata ({', '.join(adata.layers.keys())})", layer)
        if design not in adata.obs.columns:
            fail("design", f"a column of adata.obs ({', '.join(map(str, adata.obs.columns))})", design)
        if pseudobulk is None:
            by = _pseudobulk_keys(adata.obs, design)
        elif pseudobulk:
            extra = [c for c in ("replicate", "guide") if c in adata.obs.columns]
            if not extra:
                fail("pseudobulk", "False or None for an AnnData without 'replicate' or 'guide' columns",
                     pseudobulk)
            by = (design, extra[0])
        else:
            by = None
        if by is not None:
            _check_cell_counts(adata.X if layer is None else adata.layers[layer],
                               "adata" if layer is None else f"adata.layers[{layer!r}]")
            adata = _sum_cells(adata, by, layer)
            layer = None
        X = adata.X if layer is None else adata.layers[layer]
        return cls.from_arrays(X, adata.obs, design=design, control=control, genes=adata.var_names)

    def normalized(self, size_factors: np.ndarray) -> np.ndarray:
        """Counts divided by the size factors (samples x genes)."""
        return self.counts / size_factors[:, None]


def _check_cell_counts(X, name: str) -> None:
    """Validate cell-level counts before they are summed (a sum can hide a negative count)."""
    values = X.data if sp.issparse(X) else np.asarray(X)
    if values.dtype.kind not in "biuf":
        fail(name, "a numeric matrix of counts", f"dtype {values.dtype}", exc=TypeError)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)):
            fail(name, "cell counts without NaN or infinite values",
                 f"{int(np.sum(~np.isfinite(values)))} non-finite values")
        if np.any(values != np.round(values)):
            bad = values[values != np.round(values)]
            fail(name, "cell counts that are integers", f"non-integer values such as {bad[0]:g}")
    if values.size and values.min() < 0:
        fail(name, "cell counts that are non-negative", f"minimum {values.min():g}")


def _pseudobulk_keys(obs: pd.DataFrame, design: str):
    for extra in ("replicate", "guide"):
        if extra in obs.columns:
            dup = obs[[design, extra]].astype(str).duplicated().any()
            return (design, extra) if dup else None
    return None


def _sum_cells(adata: ad.AnnData, by, layer):
    try:
        from ..sim import pseudobulk as _pb
    except Exception:  # pragma: no cover - the simulator package is part of simpert
        _pb = None
    if _pb is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _pb(adata, by=tuple(by), layer=layer)
    X = adata.X if layer is None else adata.layers[layer]  # pragma: no cover
    frame = adata.obs[list(by)].astype(str)
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(frame))
    ind = sp.csr_matrix((np.ones(adata.n_obs), (codes, np.arange(adata.n_obs))))
    summed = np.asarray((ind @ (sp.csr_matrix(X) if sp.issparse(X) else X)))
    obs = pd.DataFrame(list(uniques), columns=list(by))
    obs.index = obs.astype(str).agg("_".join, axis=1)
    return ad.AnnData(X=summed, obs=obs, var=adata.var.copy())


def as_dataset(data, *, design: str = "perturbation", control: str = "control") -> DEDataset:
    """Return ``data`` as a :class:`DEDataset` (AnnData is converted, a dataset passed through).

    Parameters
    ----------
    data : AnnData or DEDataset
        Input.
    design, control : str
        See :meth:`DEDataset.from_anndata`.

    Returns
    -------
    DEDataset
    """
    if isinstance(data, DEDataset):
        if data.control != control:
            fail("control", f"the control of the given dataset ({data.control!r})", control)
        return data
    check("adata", data, Instance((ad.AnnData, DEDataset), "an AnnData or a DEDataset"))
    return DEDataset.from_anndata(data, design=design, control=control)
