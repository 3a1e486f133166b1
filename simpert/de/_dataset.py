"""The validated input of a differential-expression fit: counts and a design.

The design is one perturbation factor, optionally after a few covariates (factors or
numeric columns), written as a formula ``"~ replicate + perturbation"`` whose last term is
the perturbation factor; a plain column name is the one-factor design.

:class:`DEDataset` follows PyDESeq2's split between a dataset (counts and metadata, checked
once) and the statistics computed from it. Samples are reordered so that the reference
(control) level comes first and each level's samples are contiguous, which lets every step
of the native engine work on per-level segments with ``numpy.add.reduceat``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import Instance, check, fail

__all__ = ["DEDataset", "as_dataset", "parse_design"]

_TERM = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


def parse_design(design: str) -> tuple[str, tuple]:
    """Split a design into the perturbation factor and the covariate terms.

    Parameters
    ----------
    design : str
        A column name (one-factor design) or a formula of main effects,
        ``"~ covariate_1 + ... + perturbation"``; the last term is the perturbation factor.

    Returns
    -------
    factor : str
        The perturbation column.
    covariates : tuple of str
        The covariate columns, in formula order (empty for a one-factor design).

    Raises
    ------
    ValueError
        For interactions, transformations, intercept terms, repeated terms or an empty
        formula.
    """
    check("design", design, Instance((str,), "a column name or a formula such as '~ replicate + perturbation'"))
    text = design.strip()
    if not text.startswith("~"):
        return design, ()
    body = text[1:].strip()
    terms = [t.strip() for t in body.split("+")] if body else []
    bad = [t for t in terms if not _TERM.match(t)]
    if not terms or bad:
        fail("design", "a formula of main effects such as '~ replicate + perturbation' (column names joined "
             "by '+'; no interactions, transformations or intercept terms)", design)
    if len(set(terms)) != len(terms):
        fail("design", "a formula without repeated terms", design)
    return terms[-1], tuple(terms[:-1])


def _covariate_matrix(obs: pd.DataFrame, terms: tuple, factor: str):
    """R's ``model.matrix`` columns (without intercept) of the covariate terms.

    Factors (strings, categories, booleans) get one indicator per level but the first
    (categories in order, otherwise sorted levels); numeric columns enter as they are.
    """
    cols, names, frame = [], [], {}
    for term in terms:
        if term == factor:
            fail("design", f"a formula whose covariates differ from the perturbation factor {factor!r}", term)
        if term not in obs.columns:
            fail("design", f"a formula of columns of obs ({', '.join(map(str, obs.columns))})", term)
        col = obs[term]
        if col.isna().any():
            fail("design", f"covariates without missing values; obs[{term!r}] has", f"{int(col.isna().sum())} missing")
        if col.dtype.kind in "iuf" and not isinstance(col.dtype, pd.CategoricalDtype):
            x = col.to_numpy(dtype=float)
            if not np.all(np.isfinite(x)):
                fail("design", f"finite numeric covariates; obs[{term!r}] has", "infinite values")
            cols.append(x[:, None])
            names.append(term)
            frame[term] = x
            continue
        labels = col.astype(str).to_numpy()
        if isinstance(col.dtype, pd.CategoricalDtype):
            present = set(labels)
            levels = [str(c) for c in col.cat.categories if str(c) in present]
        else:
            levels = sorted(set(labels))
        if len(levels) < 2:
            fail("design", f"factor covariates with at least 2 levels; obs[{term!r}] has", levels)
        cols.append(np.stack([(labels == lv).astype(float) for lv in levels[1:]], axis=1))
        names.extend(f"{term}{lv}" for lv in levels[1:])
        frame[term] = pd.Categorical(labels, categories=levels)
    return np.concatenate(cols, axis=1), tuple(names), pd.DataFrame(frame, index=obs.index)


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
        Name of the perturbation factor (the ``obs`` column).
    covariates : ndarray, shape (n_samples, n_columns), optional
        Covariate columns of the model matrix (R's coding, without intercept), in sample
        order; None for a one-factor design.
    covariate_names : tuple of str
        Names of those columns.
    covariate_frame : pandas.DataFrame, optional
        The covariate ``obs`` columns in sample order (factors as categoricals whose first
        category is the reference), for the PyDESeq2 and R backends.
    formula : str, optional
        The design formula (None for a one-factor design).

    Notes
    -----
    Build one with :meth:`from_anndata` or :meth:`from_arrays`; both check the counts (no
    NaN, no negative or non-integer values), the design (a control level with samples, at
    least two levels, at least one level with replicates) and the metadata (one row per
    sample). A level with a single sample is allowed, as in DESeq2: it contributes a
    coefficient and a test but no information about the dispersion. With covariates the
    samples of each level are further ordered by their covariate values, so that the cells
    of the design (samples with equal model-matrix rows) are contiguous; the model matrix
    must have full rank (a covariate confounded with the perturbation is refused).
    """

    counts: np.ndarray
    samples: pd.Index
    genes: pd.Index
    levels: tuple
    level_of_sample: np.ndarray
    design: str = "perturbation"
    covariates: np.ndarray | None = None
    covariate_names: tuple = ()
    covariate_frame: pd.DataFrame | None = None
    formula: str | None = None

    @property
    def n_covariates(self) -> int:
        """Number of covariate columns of the model matrix."""
        return 0 if self.covariates is None else self.covariates.shape[1]

    @property
    def n_coef(self) -> int:
        """Number of model coefficients (levels plus covariate columns)."""
        return self.n_levels + self.n_covariates

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
            One row per sample, with the factor column (and any covariate columns).
        design : str, default "perturbation"
            Column of ``obs`` holding the factor, or a formula ``"~ replicate +
            perturbation"`` of covariate columns and, last, the perturbation factor.
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
        formula = design if design.strip().startswith("~") else None
        design, cov_terms = parse_design(design)
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
            holders = [t for t in cov_terms if t in obs.columns and (obs[t].astype(str) == control).any()]
            if holders:
                fail("design", f"a formula whose last term is the perturbation factor (obs[{holders[0]!r}] "
                     f"holds the control {control!r}; write it last)", formula)
            fail("control", f"a level of obs[{design!r}] with samples (levels: {', '.join(order[:10])}"
                 + (", ..." if len(order) > 10 else "") + ")", control)
        levels = [control] + [lv for lv in order if lv != control]
        if len(levels) < 2:
            fail("obs", f"a design with at least one level besides the control in obs[{design!r}]", levels)
        code_of = {lv: i for i, lv in enumerate(levels)}
        codes = np.fromiter((code_of[x] for x in labels), dtype=np.intp, count=len(labels))
        cov = cov_names = cov_frame = None
        if cov_terms:
            cov, cov_names, cov_frame = _covariate_matrix(obs, cov_terms, design)
            # samples by level, then by covariate values: the design's cells are contiguous
            perm = np.lexsort(tuple(cov[:, ::-1].T) + (codes,))
            _check_full_rank(cov, codes, len(levels), cov_names)
        else:
            perm = np.argsort(codes, kind="stable")
        n_coef = len(levels) + (0 if cov is None else cov.shape[1])
        if X.shape[0] <= n_coef:
            fail("obs", "a design with replicates (more samples than model coefficients, as DESeq2 requires)",
                 f"{X.shape[0]} samples for {n_coef} coefficients")
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
        if cov is None:
            return cls(counts=np.ascontiguousarray(X[perm]), samples=samples, genes=genes,
                       levels=tuple(levels), level_of_sample=codes[perm], design=design)
        cov_frame = cov_frame.iloc[perm].copy()
        cov_frame.index = samples
        return cls(counts=np.ascontiguousarray(X[perm]), samples=samples, genes=genes,
                   levels=tuple(levels), level_of_sample=codes[perm], design=design,
                   covariates=np.ascontiguousarray(cov[perm]), covariate_names=cov_names,
                   covariate_frame=cov_frame, formula=formula)

    @classmethod
    def from_anndata(cls, adata: ad.AnnData, *, design: str = "perturbation", control: str = "control",
                     layer: str | None = None, pseudobulk: bool | None = None) -> "DEDataset":
        """Build a dataset from an AnnData of samples (or cells, which are pseudobulked).

        Parameters
        ----------
        adata : AnnData
            Integer counts in ``layers["counts"]`` when present (or ``layers[layer]``), else
            ``.X``; the factor (and covariates) in ``obs``.
        design : str, default "perturbation"
            Column of ``obs`` holding the factor, or a formula ``"~ replicate +
            perturbation"`` (see :meth:`from_arrays`). Summed cells keep a covariate only
            when it is one of the columns the sums are taken over or is constant within
            each sample.
        control : str, default "control"
            Reference level.
        layer : str, optional
            Layer with the counts.
        pseudobulk : bool or None, default None
            Sum cells into samples first. ``None`` decides from ``obs``: when a
            ``replicate`` column exists and some (level, replicate) pair has more than one
            row, rows are summed per (level, replicate); without ``replicate`` but with a
            ``guide`` column that repeats within a level, per (level, guide); otherwise the
            rows are taken as samples. Rows are samples too when ``obs`` has an
            ``n_cells`` column (a pseudobulk) or when the design's factor covariates with
            the level and replicate name each row once (samples per perturbation x batch).

        Returns
        -------
        DEDataset
        """
        check("adata", adata, Instance((ad.AnnData,), "an AnnData"))
        if layer is None:
            layer = "counts" if "counts" in adata.layers else None
        elif layer not in adata.layers:
            fail("layer", f"None or a layer of adata ({', '.join(adata.layers.keys())})", layer)
        full_design = design
        design, cov_terms = parse_design(design)
        if design not in adata.obs.columns:
            fail("design", f"a column of adata.obs ({', '.join(map(str, adata.obs.columns))})", design)
        for term in cov_terms:
            if term not in adata.obs.columns:
                fail("design", f"a formula of columns of adata.obs ({', '.join(map(str, adata.obs.columns))})", term)
        if pseudobulk is None:
            by = _pseudobulk_keys(adata.obs, design, cov_terms)
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
            cells_obs = adata.obs
            adata = _sum_cells(adata, by, layer)
            layer = None
            for term in cov_terms:
                if term not in adata.obs.columns:
                    adata.obs[term] = _constant_within(cells_obs, by, term, adata.obs)
        X = adata.X if layer is None else adata.layers[layer]
        return cls.from_arrays(X, adata.obs, design=full_design, control=control, genes=adata.var_names)

    def normalized(self, size_factors: np.ndarray) -> np.ndarray:
        """Counts divided by the size factors (samples x genes)."""
        return self.counts / size_factors[:, None]


def _check_full_rank(cov: np.ndarray, codes: np.ndarray, n_levels: int, names: tuple) -> None:
    """Refuse covariates that are confounded with the perturbation factor (or each other)."""
    sizes = np.bincount(codes, minlength=n_levels).astype(float)
    means = np.zeros((n_levels, cov.shape[1]))
    np.add.at(means, codes, cov)
    resid = cov - (means / sizes[:, None])[codes]
    scale = max(1.0, float(np.abs(cov).max()))
    s = np.linalg.svd(resid / scale, compute_uv=False)
    if s.size == 0 or s.min() <= 1e-9 * np.sqrt(cov.shape[0]):
        # name the columns that carry no information beyond the perturbation levels
        flat = [n for n, c in zip(names, resid.T) if np.abs(c).max() <= 1e-9 * scale]
        what = ", ".join(flat) if flat else ", ".join(names)
        fail("design", "covariates that vary within perturbation levels (a full-rank model matrix); "
             "confounded with the perturbation", what)


def _constant_within(cells_obs: pd.DataFrame, by, term: str, samples_obs: pd.DataFrame) -> np.ndarray:
    """A covariate carried from cells to samples: it must be constant within every sample."""
    frame = cells_obs[list(by) + [term]].astype({b: str for b in by})
    n_values = frame.groupby(list(by), observed=True)[term].nunique(dropna=False)
    if (n_values > 1).any():
        fail("design", f"covariates that are constant within each summed sample; obs[{term!r}] varies "
             f"within samples (sum cells by it, or pass samples)", term)
    first = frame.groupby(list(by), observed=True)[term].first()
    keys = pd.MultiIndex.from_frame(samples_obs[list(by)].astype(str))
    return first.reindex(keys).to_numpy()


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


def _pseudobulk_keys(obs: pd.DataFrame, design: str, covariates=()):
    """Columns to sum cells by, or None when the rows are samples already.

    Rows are samples when ``obs`` has an ``n_cells`` column (a pseudobulk), or when the
    design column, the replicate (or guide) column and the covariates together name every
    row once (e.g. samples per perturbation x batch that carry a cell-level replicate label;
    factor covariates only).
    """
    if "n_cells" in obs.columns:
        return None
    # factor covariates only: a numeric one (a per-cell quality score) does not name samples
    covs = [c for c in covariates if c in obs.columns and c != design
            and not pd.api.types.is_numeric_dtype(obs[c])]
    for extra in ("replicate", "guide"):
        if extra in obs.columns:
            dup = obs[[design, extra, *covs]].astype(str).duplicated().any()
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
        Input (a dataset keeps its own design).
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
