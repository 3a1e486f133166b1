"""R DESeq2 backend through rpy2: one ``DESeq()`` fit with the full factor (after the
covariates of the design, ``~ cov0 + ... + perturbation``), then ``results()`` (and
``lfcShrink(type = "normal")`` when asked) per perturbation against the control.

Levels are passed to R under formula-safe codes (``L00000`` is the control, the reference
level) so that any perturbation name works. Conversion uses
``localconverter(default_converter + numpy2ri.converter + pandas2ri.converter)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._dataset import DEDataset

__all__ = ["deseq_r"]

_R_FUNCTION = r"""
function(counts, lev_idx, n_levels, alpha, shrink, cooks, indep, fit_type, cov, design) {
  suppressPackageStartupMessages(library(DESeq2))
  codes <- sprintf("L%05d", seq_len(n_levels) - 1L)
  coldata <- data.frame(perturbation = factor(codes[lev_idx], levels = codes))
  if (!is.null(cov)) coldata <- cbind(as.data.frame(cov), coldata)
  rownames(coldata) <- colnames(counts) <- sprintf("s%d", seq_len(ncol(counts)))
  rownames(counts) <- sprintf("g%d", seq_len(nrow(counts)))
  storage.mode(counts) <- "integer"
  dds <- suppressMessages(DESeqDataSetFromMatrix(counts, coldata, design = as.formula(design)))
  dds <- DESeq(dds, quiet = TRUE, fitType = fit_type, minReplicatesForReplace = if (cooks) 7 else Inf)
  G <- nrow(counts); P <- n_levels - 1L
  m <- function() matrix(NA_real_, nrow = G, ncol = P)
  lfc <- m(); se <- m(); st <- m(); pv <- m(); pa <- m(); ls <- m(); ss <- m()
  bpv <- NA_real_
  for (k in seq_len(P)) {
    ctr <- c("perturbation", codes[k + 1L], codes[1L])
    res <- results(dds, contrast = ctr, alpha = alpha, cooksCutoff = cooks,
                   independentFiltering = indep)
    lfc[, k] <- res$log2FoldChange; se[, k] <- res$lfcSE; st[, k] <- res$stat
    pv[, k] <- res$pvalue; pa[, k] <- res$padj
    if (shrink) {
      shr <- lfcShrink(dds, contrast = ctr, res = res, type = "normal", quiet = TRUE)
      ls[, k] <- shr$log2FoldChange; ss[, k] <- shr$lfcSE
      bpv <- priorInfo(shr)$betaPriorVar[paste0("perturbation", codes[k + 1L])]
    }
  }
  fn <- dispersionFunction(dds)
  coefs <- attr(fn, "coefficients")
  if (is.null(coefs)) coefs <- c(NA_real_, NA_real_)
  mc <- mcols(dds)
  list(base_mean = mc$baseMean, size_factors = unname(sizeFactors(dds)),
       genewise = mc$dispGeneEst, trend = mc$dispFit, map = mc$dispMAP, final = mc$dispersion,
       lfc = lfc, se = se, stat = st, pvalue = pv, padj = pa, lfc_shrunk = ls, se_shrunk = ss,
       coefs = unname(coefs), prior_var = attr(fn, "dispPriorVar"),
       var_log_disp = attr(fn, "varLogDispEsts"), beta_prior_var = unname(bpv),
       fit_type = attr(fn, "fitType"))
}
"""


def deseq_r(ds: DEDataset, *, alpha: float = 0.1, shrink: str | None = None, cooks: bool = True,
            independent_filter: bool = True, fit_type: str = "parametric"):
    """Fit with R DESeq2 (through rpy2) and return a :class:`~simpert.de.DEResults`.

    Parameters
    ----------
    ds : DEDataset
        Counts and design.
    alpha : float, default 0.1
        ``results(alpha = )``.
    shrink : {None, "normal", "ash"}
        ``"normal"`` adds ``lfcShrink(type = "normal")`` per perturbation.
    cooks : bool, default True
        Cook's cutoff in ``results()`` and outlier replacement in ``DESeq()``.
    independent_filter : bool, default True
        ``results(independentFiltering = )``.
    fit_type : {"parametric", "local", "mean"}, default "parametric"
        ``DESeq(fitType = )``.

    Returns
    -------
    DEResults
    """
    from .._rbridge import robjects

    ro = robjects("backend='r'")
    from rpy2.robjects import default_converter, numpy2ri, pandas2ri
    from rpy2.robjects.conversion import localconverter
    from ._deseq import results_from_arrays

    conv = default_converter + numpy2ri.converter + pandas2ri.converter
    with localconverter(conv):
        fn = ro.r(_R_FUNCTION)
        cov, design = ro.NULL, "~ perturbation"
        if ds.covariate_frame is not None:  # formula-safe names; factors keep their level order
            frame = ds.covariate_frame.copy()
            names = [f"cov{i}" for i in range(frame.shape[1])]
            frame.columns = names
            for k in names:
                if isinstance(frame[k].dtype, pd.CategoricalDtype):
                    frame[k] = frame[k].cat.rename_categories([f"K{j}" for j in range(len(frame[k].cat.categories))])
            frame.index = [f"s{i + 1}" for i in range(len(frame))]
            cov, design = frame, "~ " + " + ".join(names + ["perturbation"])
        out = fn(np.ascontiguousarray(ds.counts.T).astype(np.int32),
                 (ds.level_of_sample + 1).astype(np.int32), int(ds.n_levels), float(alpha),
                 bool(shrink == "normal"), bool(cooks), bool(independent_filter), str(fit_type), cov, design)
        res = dict(out.items()) if hasattr(out, "items") else {n: out[i] for i, n in enumerate(out.names)}

    def arr(x):
        return np.array(x, dtype=float)

    mats = {"log2fc": arr(res["lfc"]).T, "lfc_se": arr(res["se"]).T, "stat": arr(res["stat"]).T,
            "pvalue": arr(res["pvalue"]).T, "padj": arr(res["padj"]).T}
    if shrink == "normal":
        mats["log2fc_shrunk"], mats["lfc_se_shrunk"] = arr(res["lfc_shrunk"]).T, arr(res["se_shrunk"]).T
    coefs = arr(res["coefs"]).ravel()
    info = {"trend": str(np.asarray(res["fit_type"]).ravel()[0]), "asymptDisp": float(coefs[0]),
            "extraPois": float(coefs[1]), "prior_var": float(arr(res["prior_var"]).ravel()[0]),
            "var_log_disp": float(arr(res["var_log_disp"]).ravel()[0])}
    if shrink == "normal":
        info["beta_prior_var"] = float(arr(res["beta_prior_var"]).ravel()[0])
    disp = {k: arr(res[k]).ravel() for k in ("genewise", "trend", "map", "final")}
    return results_from_arrays(ds, backend="r", alpha=alpha, base_mean=arr(res["base_mean"]).ravel(),
                               size_factors=arr(res["size_factors"]).ravel(), dispersions=disp,
                               matrices=mats, info=info)
