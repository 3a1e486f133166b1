"""The native DESeq2 engine: one fit of a one-factor design, every contrast against control.

Steps (R DESeq2 1.38's ``DESeq()`` followed by ``results()`` per contrast, with defaults;
``R/core.R`` and ``R/results.R``): size factors (median of ratios) -> gene-wise dispersions
(Cox-Reid; R's line search, grid at its cap) -> trend (parametric, falling back to locfit's
local fit; or local or mean) -> MAP dispersions -> NB GLM (IRLS with R's stopping rule;
``optim`` refit at the iteration cap) -> Cook's distances (replacement and refit where a
level has 7 or more samples) -> Wald tests -> the all-zero contrast rule -> Cook's filtering
-> independent filtering -> BH.
Each per-gene step runs on blocks of genes (threads when ``n_jobs > 1``); within a block
everything is elementwise work over (gene, sample) and (gene, level) arrays.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

from ._dataset import DEDataset
from ._native_cooks import (cooks_cutoff, cooks_distance, max_cooks, replacement_counts,
                            robust_disp)
from ._native_dispersion import genewise_dispersion, map_dispersion, rough_moments_init
from ._native_filtering import adjust_pvalues, shrunk_results_rules
from ._native_glm import LOG2E, contrast_se, fit_quantities, irls_one_factor, optim_refit
from ._native_shrink import beta_prior_var, shrink_normal
from ._native_sizefactors import base_mean_var, median_of_ratios
from ._native_trend import DispersionTrend, fit_trend, prior_variance

__all__ = ["NativeFit", "fit_native"]

_LAM_MLE = 1e-6 / np.log(2.0) ** 2


@dataclass
class NativeFit:
    """Arrays produced by :func:`fit_native` (genes in the dataset's order)."""

    size_factors: np.ndarray
    base_mean: np.ndarray
    all_zero: np.ndarray
    disp_gene: np.ndarray
    disp_fit: np.ndarray
    disp_map: np.ndarray
    disp_final: np.ndarray
    disp_outlier: np.ndarray
    trend: DispersionTrend
    prior_var: float
    var_log_disp: float
    max_cooks: np.ndarray
    cooks_outlier: np.ndarray
    replaced: np.ndarray
    lfc: np.ndarray
    lfc_se: np.ndarray
    stat: np.ndarray
    pvalue: np.ndarray
    padj: np.ndarray
    filter_threshold: np.ndarray
    converged: np.ndarray
    contrast_zero: np.ndarray | None = None
    any_cooks_outlier: np.ndarray | None = None
    lfc_shrunk: np.ndarray | None = None
    lfc_se_shrunk: np.ndarray | None = None
    beta_prior_var: float | None = None
    extra: dict = field(default_factory=dict)


def _n_jobs(n_jobs) -> int:
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, int(n_jobs))


def _blocks(n: int, n_samples: int, target: int = 250_000) -> list[slice]:
    size = max(16, min(n, target // max(n_samples, 1)))
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]


def _map(fn, n: int, n_samples: int, n_jobs: int):
    blocks = _blocks(n, n_samples)
    if n_jobs > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(n_jobs) as ex:
            parts = list(ex.map(fn, blocks))
    else:
        parts = [fn(b) for b in blocks]
    if not parts:
        return None
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate([p[k] for p in parts], axis=0) for k in range(len(parts[0])))
    return np.concatenate(parts, axis=0)


def _level_mean_mu(y, sf, starts, sizes):
    gmean = np.add.reduceat(y / sf[None, :], starts, axis=1) / sizes[None, :]
    return np.maximum(np.repeat(gmean, sizes, axis=1) * sf[None, :], 0.5)


def _dispersions(Y, sf, starts, sizes, base_mean, base_var, max_disp, n_jobs, trend=None,
                 prior=None, fit_type="parametric", r_det=False):
    """Gene-wise, trend, MAP and final dispersions for the rows of ``Y``."""
    m = Y.shape[1]

    def genewise(b):
        y = Y[b]
        init = rough_moments_init(y, sf, starts, sizes, base_mean[b], base_var[b], max_disp)
        mu = _level_mean_mu(y, sf, starts, sizes)
        return genewise_dispersion(y, mu, starts, init, max_disp, r_det=r_det)

    disp_gene = _map(genewise, Y.shape[0], m, n_jobs)
    if trend is None:
        trend = fit_trend(base_mean, disp_gene, fit_type=fit_type)
    disp_fit = trend(base_mean)
    if prior is None:
        prior = prior_variance(disp_gene, disp_fit, m, len(starts))
    prior_var, var_log = prior

    def maps(b):
        y = Y[b]
        mu = _level_mean_mu(y, sf, starts, sizes)
        return map_dispersion(y, mu, starts, disp_gene[b], disp_fit[b], prior_var, max_disp, r_det=r_det)

    disp_map = _map(maps, Y.shape[0], m, n_jobs)
    outlier = np.log(disp_gene) > np.log(disp_fit) + 2.0 * np.sqrt(var_log)
    final = np.where(outlier, disp_gene, disp_map)
    return disp_gene, disp_fit, disp_map, final, outlier, trend, (prior_var, var_log)


def _glm_cooks(Y, sf, alpha, starts, sizes, cutoff, replaceable, n_jobs):
    """MLE fit (treatment coding) and Cook's summaries for the rows of ``Y``."""
    L = len(starts)
    ind = np.ones(L, dtype=bool)
    ind[0] = False
    lam = np.full(L, _LAM_MLE)
    p = L
    has3 = np.repeat(sizes >= 3, sizes)
    m = Y.shape[1]

    def work(b):
        y = Y[b]
        a = alpha[b]
        eta, n_iter = irls_one_factor(y, sf, a, starts, sizes, ind, _LAM_MLE, lam)
        conv = n_iter < 100
        bad = np.flatnonzero(~conv)
        if bad.size:  # R: fitNbinomGLMsOptim for every gene whose IRLS hit maxit
            start = np.add.reduceat(np.log(y[bad] / sf[None, :] + 0.1), starts, axis=1) / sizes[None, :]
            eta[bad], conv[bad] = optim_refit(y[bad], sf, a[bad], starts, sizes, eta[bad], start)
        mu, W, H = fit_quantities(y, sf, a, starts, sizes, eta)
        cd = cooks_distance(y, mu, H, robust_disp(y / sf[None, :], starts, sizes), p)
        mc = max_cooks(cd, sizes)
        mc_rep = np.where(replaceable[None, :], 0.0, cd)[:, has3].max(axis=1) if has3.any() else \
            np.full(y.shape[0], np.nan)
        any_out = (cd > cutoff).any(axis=1)
        rep_out = ((cd > cutoff) & replaceable[None, :]).any(axis=1)
        top = np.argmax(np.where(np.isfinite(cd), cd, -np.inf), axis=1)
        out_count = y[np.arange(y.shape[0]), top]
        n_greater = (y > out_count[:, None]).sum(axis=1)
        return eta, W, conv, mc, mc_rep, any_out, rep_out, n_greater

    return _map(work, Y.shape[0], m, n_jobs)


def fit_native(ds: DEDataset, *, alpha: float = 0.1, cooks: bool = True, independent_filter: bool = True,
               shrink: str | None = None, n_jobs: int | None = 1, min_replicates_replace: int = 7,
               fit_type: str = "parametric", r_det_range: bool = False) -> NativeFit:
    """Run the native engine on a dataset.

    Parameters
    ----------
    ds : DEDataset
        Counts and design.
    alpha : float, default 0.1
        FDR level of independent filtering.
    cooks : bool, default True
        Flag (and where possible replace) count outliers by Cook's distance.
    independent_filter : bool, default True
        Independent filtering on the base mean before BH.
    shrink : {None, "normal"}, default None
        Also compute normal-prior shrunken LFCs.
    n_jobs : int, default 1
        Threads over blocks of genes (-1: all cores).
    min_replicates_replace : int, default 7
        Levels with at least this many samples have outlier counts replaced.
    fit_type : {"parametric", "local", "mean"}, default "parametric"
        Dispersion trend (R's ``fitType``); a failed parametric fit falls back to local.
    r_det_range : bool, default False
        Form the Cox-Reid ``det(X'WX)`` in double precision as R does (see
        :func:`simpert.de.deseq`).

    Returns
    -------
    NativeFit
    """
    n_jobs = _n_jobs(n_jobs)
    Y = np.ascontiguousarray(ds.counts.T)
    G, m = Y.shape
    starts, sizes = ds.level_starts, ds.level_sizes
    L = len(starts)
    max_disp = float(max(10, m))
    sf = median_of_ratios(Y)
    base_mean, base_var = base_mean_var(Y, sf)
    all_zero = Y.sum(axis=1) == 0
    nz = np.flatnonzero(~all_zero)
    Ynz = Y[nz]
    bm_nz, bv_nz = base_mean[nz], base_var[nz]

    dg, dfit, dmap, dfinal, dout, trend, prior = _dispersions(
        Ynz, sf, starts, sizes, bm_nz, bv_nz, max_disp, n_jobs, fit_type=fit_type, r_det=r_det_range)

    cutoff = cooks_cutoff(m, L) if m > L else np.inf
    replaceable = np.repeat(sizes >= min_replicates_replace, sizes)
    eta, W, conv, mc, mc_rep, any_out, rep_out, n_greater = _glm_cooks(
        Ynz, sf, dfinal, starts, sizes, cutoff, replaceable, n_jobs)

    replaced = np.zeros(G, dtype=bool)
    now_zero = np.zeros(G, dtype=bool)
    do_replace = cooks and replaceable.any() and m > L
    if do_replace and any_out.any():
        rows = np.flatnonzero(rep_out)
        if rows.size:
            y_old = Ynz[rows]
            y_new = y_old.copy()
            # recompute the Cook's mask on the affected rows (cheap) and replace
            eta_r = eta[rows]
            mu_r, _, H_r = fit_quantities(y_old, sf, dfinal[rows], starts, sizes, eta_r)
            cd_r = cooks_distance(y_old, mu_r, H_r, robust_disp(y_old / sf[None, :], starts, sizes), L)
            mask = (cd_r > cutoff) & replaceable[None, :]
            repl = replacement_counts(y_old / sf[None, :], sf)
            y_new[mask] = repl[mask]
            Ynz[rows] = y_new
            bm_new, bv_new = base_mean_var(y_new, sf)
            bm_nz[rows], bv_nz[rows] = bm_new, bv_new
            base_mean[nz[rows]] = bm_new
            zero_now = y_new.sum(axis=1) == 0
            now_zero[nz[rows[zero_now]]] = True
            fit_rows = rows[~zero_now]
            replaced[nz[rows]] = True
            if fit_rows.size:
                sub = _dispersions(Ynz[fit_rows], sf, starts, sizes, bm_nz[fit_rows], bv_nz[fit_rows],
                                   max_disp, n_jobs, trend=trend, prior=prior, r_det=r_det_range)
                dg[fit_rows], dfit[fit_rows], dmap[fit_rows], dfinal[fit_rows], dout[fit_rows] = sub[:5]
                e2, W2, c2, *_ = _glm_cooks(Ynz[fit_rows], sf, dfinal[fit_rows], starts, sizes, cutoff,
                                            replaceable, n_jobs)
                eta[fit_rows], W[fit_rows], conv[fit_rows] = e2, W2, c2
        # maxCooks after a refit: replaceable samples no longer count
        mc = np.full_like(mc, np.nan) if replaceable.all() else mc_rep

    P = L - 1
    lfc = np.full((P, G), np.nan)
    se = np.full((P, G), np.nan)
    lfc[:, nz] = (eta[:, 1:] - eta[:, :1]).T * LOG2E
    ind = np.ones(L, dtype=bool)
    ind[0] = False
    se[:, nz] = contrast_se(W, ind, _LAM_MLE, np.full(L, _LAM_MLE), np.arange(1, L)) * LOG2E
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = lfc / se
    pvalue = 2.0 * ndtr(-np.abs(stat))
    # R's results() (cleanContrast in R/results.R): every count of both compared levels is 0
    # -> log2FC 0, stat 0, p-value 1 (lfcSE kept); Cook's filtering comes after. R looks at
    # counts(dds), which DESeq() restores to the original counts after the refit with
    # replaced ones.
    level_zero = np.add.reduceat(Y[nz], starts, axis=1) == 0
    contrast_zero = np.zeros((P, G), dtype=bool)
    contrast_zero[:, nz] = (level_zero[:, 1:] & level_zero[:, :1]).T
    lfc_mle = lfc.copy()
    lfc[contrast_zero] = 0.0
    stat[contrast_zero] = 0.0
    pvalue[contrast_zero] = 1.0

    max_cooks_full = np.full(G, np.nan)
    max_cooks_full[nz] = mc
    cooks_outlier = np.zeros(G, dtype=bool)
    if cooks:
        out_nz = np.where(np.isfinite(mc), mc > cutoff, False)
        if L == 2:
            out_nz &= ~(n_greater >= 3)
        cooks_outlier[nz] = out_nz
        pvalue[:, cooks_outlier] = np.nan
    padj, thresholds = adjust_pvalues(lfc, se, stat, pvalue, base_mean, now_zero,
                                      independent_filter=independent_filter, alpha=alpha)

    def full(v):
        out = np.full(G, np.nan)
        out[nz] = v
        return out

    conv_full = np.zeros(G, dtype=bool)
    conv_full[nz] = conv
    # R's mcols(dds)$replace (replaceOutliers in R/core.R): a Cook's distance above the cutoff
    # in any sample of the first fit, whether or not the count could be replaced
    any_full = np.zeros(G, dtype=bool)
    any_full[nz] = any_out
    fit = NativeFit(
        size_factors=sf, base_mean=base_mean, all_zero=all_zero, disp_gene=full(dg), disp_fit=full(dfit),
        disp_map=full(dmap), disp_final=full(dfinal), disp_outlier=full(dout.astype(float)) == 1.0,
        trend=trend, prior_var=float(prior[0]), var_log_disp=float(prior[1]), max_cooks=max_cooks_full,
        cooks_outlier=cooks_outlier, replaced=replaced, lfc=lfc, lfc_se=se, stat=stat, pvalue=pvalue,
        padj=padj, filter_threshold=np.asarray(thresholds, dtype=float), converged=conv_full,
        contrast_zero=contrast_zero, any_cooks_outlier=any_full,
    )
    if shrink == "normal":
        Yorig = np.ascontiguousarray(ds.counts.T)[nz]
        keep = ~now_zero[nz]  # genes whose counts became all zero after replacement are left out
        bp = beta_prior_var(lfc_mle[:, nz][:, keep], bm_nz[keep], dfit[keep])

        def work(b):
            return shrink_normal(Yorig[b], sf, dfinal[b], starts, sizes, bp, eta[b])

        def work_t(b):
            l2, s2 = work(b)
            return l2.T, s2.T

        ls, ss = _map(work_t, nz.size, m, n_jobs)
        lfc_s = np.full((P, G), np.nan)
        se_s = np.full((P, G), np.nan)
        lfc_s[:, nz] = ls.T
        se_s[:, nz] = ss.T
        shrunk_results_rules(lfc_s, se_s, contrast_zero, now_zero)
        fit.lfc_shrunk, fit.lfc_se_shrunk, fit.beta_prior_var = lfc_s, se_s, bp
    return fit
