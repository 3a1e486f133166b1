"""PyDESeq2 backend (PyDESeq2 0.5.x) with R DESeq2's defaults where PyDESeq2 lets them be set.

One ``DeseqDataSet`` with the full factor (after the design's covariates, ``~cov0 + ... +
group``), then one ``DeseqStats`` per perturbation against
the control with independent filtering at ``alpha`` (R's 0.1 rather than PyDESeq2's 0.05).
``maxDisp`` is ``max(10, n_samples)`` in both. PyDESeq2 keeps its own Wald standard errors
(no ``minmu`` clip there) and has no simulated prior-variance branch for designs with at
most 3 residual degrees of freedom. apeglm shrinkage uses ``DeseqStats.lfc_shrink``.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd

from ._dataset import DEDataset

__all__ = ["deseq_pydeseq2"]


def deseq_pydeseq2(ds: DEDataset, *, alpha: float = 0.1, shrink: str | None = None, cooks: bool = True,
                   independent_filter: bool = True, n_jobs: int | None = 1, fit_type: str = "parametric"):
    """Fit with PyDESeq2 and return a :class:`~simpert.de.DEResults`.

    Parameters
    ----------
    ds : DEDataset
        Counts and design.
    alpha : float, default 0.1
        Independent-filtering FDR level.
    shrink : {None, "apeglm", "ash"}
        ``"apeglm"`` adds PyDESeq2's apeglm-shrunken LFCs (``"ash"`` is added by the caller).
    cooks : bool, default True
        Cook's filtering and outlier refitting.
    independent_filter : bool, default True
        Independent filtering.
    n_jobs : int, default 1
        ``n_cpus`` of PyDESeq2's inference.
    fit_type : {"parametric", "mean"}, default "parametric"
        PyDESeq2's ``fit_type``.

    Returns
    -------
    DEResults
    """
    try:
        from pydeseq2.dds import DeseqDataSet
        from pydeseq2.default_inference import DefaultInference
        from pydeseq2.ds import DeseqStats
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError("backend='pydeseq2' needs the optional dependency pydeseq2 "
                          "(pip install 'simpert[pydeseq2]')") from err
    from ._deseq import results_from_arrays

    n_cpus = 1 if not n_jobs or n_jobs < 1 else int(n_jobs)
    codes = [f"L{i:05d}" for i in range(ds.n_levels)]  # formula-safe level names, control first
    counts = pd.DataFrame(ds.counts.astype(np.int64), index=ds.samples, columns=ds.genes)
    meta = pd.DataFrame({"group": pd.Categorical([codes[i] for i in ds.level_of_sample], categories=codes)},
                        index=ds.samples)
    design = "~group"
    if ds.covariate_frame is not None:  # formula-safe names; factors keep their level order
        names = []
        for i, col in enumerate(ds.covariate_frame.columns):
            v = ds.covariate_frame[col]
            if isinstance(v.dtype, pd.CategoricalDtype):
                v = v.cat.rename_categories([f"K{j}" for j in range(len(v.cat.categories))])
            meta.insert(i, f"cov{i}", v.to_numpy() if not isinstance(v.dtype, pd.CategoricalDtype) else v.values)
            names.append(f"cov{i}")
        design = "~" + " + ".join(names + ["group"])
    inference = DefaultInference(n_cpus=n_cpus)
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(counts=counts, metadata=meta, design=design, refit_cooks=cooks,
                           max_disp=float(max(10, ds.n_samples)), inference=inference, quiet=True,
                           fit_type=fit_type)
        dds.deseq2()
        P, G = ds.n_levels - 1, ds.n_genes
        mats = {k: np.full((P, G), np.nan) for k in ("log2fc", "lfc_se", "stat", "pvalue", "padj")}
        if shrink == "apeglm":
            mats["log2fc_shrunk"] = np.full((P, G), np.nan)
            mats["lfc_se_shrunk"] = np.full((P, G), np.nan)
        base_mean = None
        for k in range(P):
            st = DeseqStats(dds, contrast=["group", codes[k + 1], codes[0]], alpha=alpha, cooks_filter=cooks,
                            independent_filter=independent_filter, inference=inference, quiet=True)
            st.summary()
            r = st.results_df.loc[ds.genes]
            base_mean = r["baseMean"].to_numpy()
            mats["log2fc"][k] = r["log2FoldChange"].to_numpy()
            mats["lfc_se"][k] = r["lfcSE"].to_numpy()
            mats["stat"][k] = r["stat"].to_numpy()
            mats["pvalue"][k] = r["pvalue"].to_numpy()
            mats["padj"][k] = r["padj"].to_numpy()
            if shrink == "apeglm":
                coeff = [c for c in st.LFC.columns if codes[k + 1] in c][0]
                st.lfc_shrink(coeff=coeff)
                r = st.results_df.loc[ds.genes]
                mats["log2fc_shrunk"][k] = r["log2FoldChange"].to_numpy()
                mats["lfc_se_shrunk"][k] = r["lfcSE"].to_numpy()
    var = dds.var
    disp = {"genewise": var["genewise_dispersions"].to_numpy(), "trend": var["fitted_dispersions"].to_numpy(),
            "map": var["MAP_dispersions"].to_numpy(), "final": var["dispersions"].to_numpy()}
    allzero = ds.counts.sum(axis=0) == 0
    for v in disp.values():
        v[allzero] = np.nan
    info = {"trend": "parametric"}
    coef = dds.uns.get("trend_coeffs")
    if coef is not None:
        info["asymptDisp"], info["extraPois"] = float(np.asarray(coef)[0]), float(np.asarray(coef)[1])
    info["prior_var"] = float(dds.uns.get("prior_disp_var", np.nan))
    return results_from_arrays(ds, backend="pydeseq2", alpha=alpha, base_mean=base_mean,
                               size_factors=dds.obs["size_factors"].to_numpy(), dispersions=disp,
                               matrices=mats, info=info)
