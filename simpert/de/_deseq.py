"""``deseq``: DESeq2-style differential expression of every perturbation against control."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import Instance, Integer, Interval, OneOf, check, fail
from ._dataset import DEDataset, as_dataset
from ._results import DEResults

__all__ = ["deseq", "results_from_arrays"]


def results_from_arrays(ds: DEDataset, *, backend: str, alpha: float, base_mean, size_factors,
                        dispersions: dict, matrices: dict, info: dict) -> DEResults:
    """Assemble a :class:`DEResults` from per-gene vectors and perturbation x gene matrices.

    Parameters
    ----------
    ds : DEDataset
        The fitted dataset.
    backend : str
        Engine name.
    alpha : float
        FDR level.
    base_mean : array_like, shape (n_genes,)
    size_factors : array_like, shape (n_samples,)
    dispersions : dict
        ``genewise``, ``trend``, ``map``, ``final`` arrays of shape (n_genes,).
    matrices : dict
        Arrays of shape (n_perturbations, n_genes) keyed by table column.
    info : dict
        Backend details.

    Returns
    -------
    DEResults
    """
    disp = pd.DataFrame({k: np.asarray(dispersions[k], dtype=float) for k in ("genewise", "trend", "map", "final")},
                        index=ds.genes)
    return DEResults(
        perturbations=pd.Index(ds.perturbations, name="perturbation"), genes=ds.genes,
        base_mean=pd.Series(np.asarray(base_mean, dtype=float), index=ds.genes, name="base_mean"),
        size_factors=pd.Series(np.asarray(size_factors, dtype=float), index=ds.samples, name="size_factor"),
        dispersions=disp, backend=backend, control=ds.control, alpha=float(alpha),
        matrices={k: np.asarray(v, dtype=float) for k, v in matrices.items()}, info=info,
    )


def _native(ds, *, alpha, shrink, cooks, independent_filter, n_jobs, fit_type="parametric", r_det_range=False):
    from ._native import fit_native

    if ds.covariates is not None:
        from ._native_covariates import fit_native_covariates

        fit = fit_native_covariates(ds, alpha=alpha, cooks=cooks, independent_filter=independent_filter,
                                    n_jobs=n_jobs, fit_type=fit_type,
                                    shrink="normal" if shrink == "normal" else None)
    else:
        fit = fit_native(ds, alpha=alpha, cooks=cooks, independent_filter=independent_filter,
                         shrink="normal" if shrink == "normal" else None, n_jobs=n_jobs, fit_type=fit_type,
                         r_det_range=r_det_range)
    mats = {"log2fc": fit.lfc, "lfc_se": fit.lfc_se, "stat": fit.stat, "pvalue": fit.pvalue, "padj": fit.padj}
    if fit.lfc_shrunk is not None:
        mats["log2fc_shrunk"], mats["lfc_se_shrunk"] = fit.lfc_shrunk, fit.lfc_se_shrunk
    info = {"trend": fit.trend.kind, "prior_var": fit.prior_var, "var_log_disp": fit.var_log_disp,
            "beta_prior_var": fit.beta_prior_var, "filter_threshold": fit.filter_threshold,
            "cooks_outlier": fit.cooks_outlier, "max_cooks": fit.max_cooks, "replaced": fit.replaced,
            "converged": fit.converged, "all_zero": fit.all_zero, "contrast_zero": fit.contrast_zero,
            "any_cooks_outlier": fit.any_cooks_outlier}
    if fit.trend.kind == "parametric":
        info["asymptDisp"], info["extraPois"] = fit.trend.coef
    elif fit.trend.kind == "mean":
        info["mean_disp"] = fit.trend.coef[0]
    if "covariate_coef" in fit.extra:  # intercept and covariate coefficients (log2), genes x columns
        info["covariate_coef"] = pd.DataFrame(fit.extra["covariate_coef"], index=ds.genes,
                                              columns=("Intercept",) + tuple(ds.covariate_names))
        info["n_cells"] = fit.extra["n_cells"]
    disp = {"genewise": fit.disp_gene, "trend": fit.disp_fit, "map": fit.disp_map, "final": fit.disp_final}
    return results_from_arrays(ds, backend="native", alpha=alpha, base_mean=fit.base_mean,
                               size_factors=fit.size_factors, dispersions=disp, matrices=mats, info=info)


def _add_ash(res: DEResults) -> DEResults:
    from ._ash import ash

    lfc, se = res.matrices["log2fc"], res.matrices["lfc_se"]
    post_m = np.full_like(lfc, np.nan)
    post_s = np.full_like(lfc, np.nan)
    fits = []
    for k in range(lfc.shape[0]):  # one prior per perturbation
        ok = np.isfinite(lfc[k]) & np.isfinite(se[k]) & (se[k] > 0)
        if ok.sum() < 2:
            fits.append(None)
            continue
        fit = ash(lfc[k][ok], se[k][ok])
        post_m[k, ok] = fit.posterior_mean
        post_s[k, ok] = fit.posterior_sd
        fits.append(fit)
    res.matrices["log2fc_shrunk"], res.matrices["lfc_se_shrunk"] = post_m, post_s
    res.info["ash"] = fits
    res._cache.clear()
    return res


def deseq(adata, *, control: str = "control", design: str = "perturbation", backend: str = "native",
          alpha: float = 0.1, shrink: str | None = None, cooks: bool = True, independent_filter: bool = True,
          n_jobs: int | None = 1, fit_type: str = "parametric", r_det_range: bool = False) -> DEResults:
    """DESeq2-style differential expression of every perturbation against the control.

    One negative binomial GLM with the perturbation factor is fitted (as ``DESeq()`` with
    ``design = ~ perturbation``, or ``~ replicate + perturbation`` with covariates) and each
    perturbation is contrasted with the control (as ``results(dds, contrast =
    c("perturbation", p, control))``), with R DESeq2's defaults: Cook's distance outlier
    handling, independent filtering at ``alpha`` and BH.

    Parameters
    ----------
    adata : AnnData or DEDataset
        Pseudobulk samples with integer counts in ``layers["counts"]`` or ``.X`` and the
        factor in ``obs[design]``. Single-cell input (rows repeating a (perturbation,
        replicate) pair, or a (perturbation, guide) pair when there is no ``replicate``
        column) is summed into pseudobulk samples first.
    control : str, default "control"
        Reference level.
    design : str, default "perturbation"
        Column of ``obs`` with the factor, or a formula of main effects whose last term is the
        perturbation factor and whose other terms are covariates (factors, or numeric columns
        entered as they are), e.g. ``"~ replicate + perturbation"`` or ``"~ batch + lane +
        perturbation"``. Interactions, transformations, unknown columns and covariates
        confounded with the perturbation raise ``ValueError``. With covariates the native
        engine solves each gene's ``X'WX`` through the Schur complement of its diagonal
        perturbation block (a matrix of the covariates' size); ``shrink="normal"`` refits the
        expanded model (every level of every factor) with R's prior variances per term.
    backend : {"native", "pydeseq2", "r"}, default "native"
        The vectorised engine of this package, PyDESeq2 (0.5.x) or R DESeq2 through rpy2.
    alpha : float, default 0.1
        FDR level for independent filtering and the summary.
    shrink : {None, "normal", "ash", "apeglm"}, default None
        Add shrunken log2 fold changes: DESeq2's normal prior (``lfcShrink(type =
        "normal")``; native and R backends), adaptive shrinkage of (log2fc, lfc_se) per
        perturbation (:func:`simpert.de.ash`; any backend) or apeglm (PyDESeq2 backend).
    cooks : bool, default True
        Cook's distance outlier handling (replacement in levels with 7 or more samples,
        NA p-values otherwise).
    independent_filter : bool, default True
        Independent filtering on the base mean; plain BH when False.
    n_jobs : int, default 1
        Threads for the native engine (-1: all cores); passed to PyDESeq2 as ``n_cpus``.
    fit_type : {"parametric", "local", "mean"}, default "parametric"
        Dispersion trend, as R's ``fitType``: ``a0 + a1 / mean`` (replaced by the local fit
        when it fails, as in R), locfit's local regression of the log dispersions on the log
        means, or the mean of the gene-wise estimates. The native and R backends support all
        three; PyDESeq2 only "parametric" and "mean".
    r_det_range : bool, default False
        Native backend: form the Cox-Reid determinant ``det(X'WX)`` in double precision as R
        does. It is a product of one weight sum per level, so with about a hundred levels or
        more it can fall below the smallest double (R's Cox-Reid term becomes +Inf) or exceed
        the largest (-Inf). R's dispersion search then jumps to that region and stops at its
        iteration cap, and the gene-wise estimate comes from R's coarse grid (with a thousand
        levels and more R's estimates are meaningless). By default the log determinant is
        summed from the log weight sums, which equals R wherever R's determinant is finite;
        set True to reproduce R exactly on such designs.

    Returns
    -------
    DEResults
        ``.table`` with columns ``perturbation, gene, base_mean, log2fc, lfc_se, stat,
        pvalue, padj`` (and ``log2fc_shrunk, lfc_se_shrunk`` with shrinkage),
        ``.size_factors``, ``.dispersions`` and ``.summary()``.

    Notes
    -----
    Bad input raises ``ValueError`` naming the problem: NaN, negative or non-integer
    counts, a control level without samples, metadata that does not match the counts, or a
    design without replicates. A perturbation with a single sample is accepted, as in
    DESeq2: it is tested (its variance comes from the shared dispersion) but it adds no
    residual degrees of freedom. Genes with zero counts in every sample get NA results and a
    base mean of 0, as in DESeq2. Where every count of both compared levels is 0 (but not of
    the whole gene), ``log2fc``, ``stat`` and ``log2fc_shrunk`` are 0 and ``pvalue`` is 1,
    as R's ``results()`` reports them (``lfc_se`` is kept; ``padj`` follows from the p-value).

    With the native backend ``info`` holds per-gene flags: ``replaced`` marks genes whose
    outlier counts were replaced and which were refitted (levels with 7 or more samples);
    ``any_cooks_outlier`` marks genes with a Cook's distance above the cutoff in any sample,
    which is what R's ``mcols(dds)$replace`` reports (it is TRUE also where the level is too
    small for replacement); ``cooks_outlier`` marks genes whose p-values are NA;
    ``contrast_zero`` (perturbations x genes) marks the all-zero contrasts above. With
    covariates, ``covariate_coef`` holds the intercept and covariate coefficients (log2,
    genes x model-matrix columns) and ``n_cells`` the number of the design's cells (samples
    with equal model-matrix rows): as in R, Cook's maxima look only at samples in cells of 3
    or more and counts are replaced only in cells of 7 or more, so a numeric covariate (every
    sample its own cell) turns Cook's outlier handling off.

    Examples
    --------
    >>> import simpert as sp
    >>> adata = sp.sim.screen(sp.sim.ScreenParams(n_genes=200, n_perturbations=4), rng=0)  # doctest: +SKIP
    >>> res = sp.de.deseq(sp.sim.pseudobulk(adata), control="control")  # doctest: +SKIP
    >>> res.summary()  # doctest: +SKIP
    """
    check("backend", backend, OneOf(("native", "pydeseq2", "r")))
    check("alpha", alpha, Interval(0, 1, closed="neither"))
    check("shrink", shrink, OneOf((None, "normal", "ash", "apeglm")))
    check("cooks", cooks, Instance((bool, np.bool_), "a bool"))
    check("independent_filter", independent_filter, Instance((bool, np.bool_), "a bool"))
    check("n_jobs", n_jobs, Integer(allow_none=True))
    check("fit_type", fit_type, OneOf(("parametric", "local", "mean")))
    check("r_det_range", r_det_range, Instance((bool, np.bool_), "a bool"))
    if fit_type == "local" and backend == "pydeseq2":
        fail("fit_type", "'parametric' or 'mean' with backend='pydeseq2'", fit_type)
    check("control", control, Instance((str,), "a level name (str)"))
    check("design", design, Instance((str,), "a column name or a formula (str)"))
    if n_jobs == 0:
        check("n_jobs", n_jobs, Integer(1), Integer(high=-1))
    if shrink == "apeglm" and backend != "pydeseq2":
        fail("shrink", f"None, 'normal' or 'ash' with backend={backend!r} (apeglm needs backend='pydeseq2')", shrink)
    if shrink == "normal" and backend == "pydeseq2":
        fail("shrink", "None, 'ash' or 'apeglm' with backend='pydeseq2'", shrink)
    ds = as_dataset(adata, design=design, control=control)
    if ds.covariates is not None and r_det_range:
        fail("r_det_range", "False with covariates in the design (the log determinant is always summed)",
             r_det_range)
    if backend == "native":
        res = _native(ds, alpha=alpha, shrink=shrink, cooks=cooks, independent_filter=independent_filter,
                      n_jobs=n_jobs, fit_type=fit_type, r_det_range=r_det_range)
    elif backend == "pydeseq2":
        from ._pydeseq2 import deseq_pydeseq2

        res = deseq_pydeseq2(ds, alpha=alpha, shrink=shrink, cooks=cooks,
                             independent_filter=independent_filter, n_jobs=n_jobs, fit_type=fit_type)
    else:
        from ._rdeseq2 import deseq_r

        res = deseq_r(ds, alpha=alpha, shrink=shrink, cooks=cooks, independent_filter=independent_filter,
                      fit_type=fit_type)
    if shrink == "ash":
        res = _add_ash(res)
    return res
