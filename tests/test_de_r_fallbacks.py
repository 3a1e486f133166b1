"""The branches of the native engine that reproduce R DESeq2's fallback paths, each against a
live R run (``tests/golden/make_golden.R``) or against R's rule written out by hand:

- genes whose counts are all zero once their Cook's outliers are replaced (R: log2FC, SE and
  stat 0, p-value 1, padj NA, base mean 0);
- the optim (L-BFGS-B) refit of genes whose IRLS hits its cap, in a design with a covariate;
- the parametric trend that does not converge in 10 rounds, replaced by the local fit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simpert.de import DEDataset, deseq

GOLDEN = Path(__file__).parent / "golden"
ZERO_AFTER = {"zero_after_c": ("control_r2", 300), "zero_after_a": ("A_r5", 250)}


def _simulate():
    sys.path.insert(0, str(GOLDEN))
    try:
        from make_inputs import simulate
    finally:
        sys.path.pop(0)
    return simulate


def _load(directory: Path, name: str, design: str | None = None) -> DEDataset:
    counts = pd.read_csv(directory / f"{name}_counts.csv", index_col=0)
    coldata = pd.read_csv(directory / f"{name}_coldata.csv")
    extra = {} if design is None else {"design": design}
    return DEDataset.from_arrays(counts[coldata["sample"]].to_numpy().T, coldata.set_index("sample"),
                                 genes=counts.index, **extra)


@pytest.fixture(scope="module")
def live_r(rscript, tmp_path_factory):
    """Three designs written to a temporary directory and fitted there by R DESeq2."""
    d = tmp_path_factory.mktemp("r_fallbacks")
    simulate = _simulate()
    # 8 + 8 samples (Cook's replacement needs 7 per level) and two genes with one count only:
    # that count is a Cook's outlier, replaced by the trimmed mean of the others, 0
    counts, coldata = simulate({"control": 8, "A": 8}, 300, np.random.default_rng(21))
    for gene, (sample, value) in ZERO_AFTER.items():
        counts.loc[gene] = 0
        counts.loc[gene, sample] = value
    counts.to_csv(d / "zeroafter_counts.csv")
    coldata.to_csv(d / "zeroafter_coldata.csv", index=False)
    # with a two-level batch covariate (the covariate engine's replacement): R replaces only
    # where 7 or more samples share a row of the model matrix, so 14 + 14 samples in 2 batches
    counts, coldata = simulate({"control": 14, "A": 14}, 300, np.random.default_rng(22))
    for gene, (sample, value) in ZERO_AFTER.items():
        counts.loc[gene] = 0
        counts.loc[gene, sample] = value
    counts.to_csv(d / "zeroaftercov_counts.csv")
    coldata = coldata.assign(batch=[f"b{i % 2}" for i in range(len(coldata))])
    coldata[["sample", "batch", "perturbation"]].to_csv(d / "zeroaftercov_coldata.csv", index=False)
    pd.DataFrame({"key": ["design"], "value": ["~ batch + perturbation"]}).to_csv(
        d / "zeroaftercov_options.csv", index=False)
    # the spiky design of make_inputs.py with a two-level batch covariate: low means with
    # sample-specific spikes make IRLS hit its cap for about a dozen genes
    counts, coldata = simulate({"control": 3, "P1": 3, "P2": 3}, 400, np.random.default_rng(1212),
                               sf_range=(0.18, 5.5), spiky=150)
    coldata["batch"] = [f"b{i % 2}" for i in range(len(coldata))]
    counts.to_csv(d / "covoptim_counts.csv")
    coldata[["sample", "batch", "perturbation"]].to_csv(d / "covoptim_coldata.csv", index=False)
    pd.DataFrame({"key": ["design"], "value": ["~ batch + perturbation"]}).to_csv(
        d / "covoptim_options.csv", index=False)
    out = subprocess.run([rscript, str(GOLDEN / "make_golden.R"), str(d), "zeroafter", "zeroaftercov", "covoptim"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    return d


def _zero_after(live_r):
    nat = deseq(_load(live_r, "zeroafter"), shrink="normal")
    r = pd.read_csv(live_r / "zeroafter_results.csv")
    t = nat.table.merge(r, on=["perturbation", "gene"], suffixes=("", "_r"))
    return nat, t.set_index(t["gene"].astype(str))


def test_genes_all_zero_after_replacement_follow_r(live_r):
    # covers and pins the all-zero-after-replacement rule (_native.py now_zero,
    # _native_filtering.adjust_pvalues): kills mutants of its zeroing and of the replacement mask
    nat, t = _zero_after(live_r)
    r_disp = pd.read_csv(live_r / "zeroafter_dispersions.csv").set_index("gene")
    assert r_disp.loc[list(ZERO_AFTER), "replace"].astype(bool).all()  # R replaced them
    assert np.asarray(nat.info["replaced"])[[nat.genes.get_loc(g) for g in ZERO_AFTER]].all()
    sub = t.loc[list(ZERO_AFTER)]
    # R's values for these genes (read from the live run) and the native ones
    for col_r, col_n in [("baseMean", "base_mean"), ("log2FoldChange", "log2fc"), ("lfcSE", "lfc_se"),
                         ("stat_r", "stat"), ("pvalue_r", "pvalue")]:
        np.testing.assert_array_equal(sub[col_n].to_numpy(), sub[col_r].to_numpy(), err_msg=col_n)
    assert (sub["log2FoldChange"] == 0).all() and (sub["stat_r"] == 0).all() and (sub["pvalue_r"] == 1).all()
    assert sub["padj_r"].isna().all() and sub["padj"].isna().all()
    # the zeroed genes enter independent filtering with base mean 0: same threshold as R
    r_filt = pd.read_csv(live_r / "zeroafter_filter.csv").set_index("perturbation")
    thr = np.asarray(nat.info["filter_threshold"], dtype=float)
    np.testing.assert_allclose(thr, r_filt.loc[nat.perturbations, "filterThreshold"].to_numpy(), rtol=1e-6)
    # and every other gene stays at parity
    rest = t.drop(index=list(ZERO_AFTER))
    ok = rest["log2FoldChange"].notna()
    assert np.max(np.abs(rest["log2fc"][ok] - rest["log2FoldChange"][ok])) <= 0.01
    assert np.mean((rest["padj"] < 0.1) == (rest["padj_r"] < 0.1)) >= 0.99


def test_shrunken_lfc_of_genes_all_zero_after_replacement_follow_r(live_r):
    # R's lfcShrink reports through results(): log2FC 0 and SE 0 for genes all zero after
    # Cook's replacement (as the unshrunken columns), not the prior-shrunk fit of the original counts
    _, t = _zero_after(live_r)
    sub = t.loc[list(ZERO_AFTER)]
    np.testing.assert_array_equal(sub["log2fc_shrunk"].to_numpy(), sub["log2FoldChange_normal"].to_numpy())
    np.testing.assert_array_equal(sub["lfc_se_shrunk"].to_numpy(), sub["lfcSE_normal"].to_numpy())


def test_genes_all_zero_after_replacement_with_a_covariate_follow_r(live_r):
    # the covariate engine's replacement path (_native_covariates.py now_zero) and its
    # shrinkage: every column of the two zeroed genes as R reports them
    nat = deseq(_load(live_r, "zeroaftercov", design="~ batch + perturbation"), shrink="normal")
    r = pd.read_csv(live_r / "zeroaftercov_results.csv")
    t = nat.table.merge(r, on=["perturbation", "gene"], suffixes=("", "_r"))
    t = t.set_index(t["gene"].astype(str))
    assert np.asarray(nat.info["replaced"])[[nat.genes.get_loc(g) for g in ZERO_AFTER]].all()
    sub = t.loc[list(ZERO_AFTER)]
    for col_r, col_n in [("baseMean", "base_mean"), ("log2FoldChange", "log2fc"), ("lfcSE", "lfc_se"),
                         ("stat_r", "stat"), ("pvalue_r", "pvalue"), ("log2FoldChange_normal", "log2fc_shrunk"),
                         ("lfcSE_normal", "lfc_se_shrunk")]:
        np.testing.assert_array_equal(sub[col_n].to_numpy(), sub[col_r].to_numpy(), err_msg=col_n)
    assert sub["padj_r"].isna().all() and sub["padj"].isna().all()
    rest = t.drop(index=list(ZERO_AFTER))
    ok = rest["log2FoldChange_normal"].notna()
    assert np.max(np.abs(rest["log2fc_shrunk"][ok] - rest["log2FoldChange_normal"][ok])) <= 0.01


def test_covariate_optim_refit_follows_r(live_r, monkeypatch):
    # covers _native_covariates.optim_refit_covariates (R's fitNbinomGLMsOptim with a covariate):
    # kills mutants of its least-squares start, coefficient layout and bounds
    import simpert.de._native_covariates as nc

    refit_rows = []
    real = nc.optim_refit_covariates

    def spy(y, *args, **kwargs):
        refit_rows.append(y.shape[0])
        return real(y, *args, **kwargs)

    monkeypatch.setattr(nc, "optim_refit_covariates", spy)
    nat = deseq(_load(live_r, "covoptim", design="~ batch + perturbation"))
    assert sum(refit_rows) >= 5  # the branch is reached
    r = pd.read_csv(live_r / "covoptim_results.csv")
    r_disp = pd.read_csv(live_r / "covoptim_dispersions.csv").set_index("gene").loc[nat.genes]
    t = nat.table.merge(r, on=["perturbation", "gene"], suffixes=("", "_r"))
    capped = t["gene"].astype(str).map(r_disp["betaIter"]) >= 100
    sub = t[capped & t["log2FoldChange"].notna()]
    assert len(sub) >= 10
    x, y = sub["log2fc"].to_numpy(), sub["log2FoldChange"].to_numpy()
    # a log2FC on the likelihood's plateau (a level of zeros) is where the optimiser stops:
    # only its sign and size are determined; elsewhere the optimum is the same
    plateau = np.abs(y) > 10
    assert np.max(np.abs(x - y)[~plateau]) <= 0.01
    assert np.all(np.sign(x[plateau]) == np.sign(y[plateau])) and np.all(np.abs(x[plateau]) > 10)
    se, se_r = sub["lfc_se"].to_numpy()[~plateau], sub["lfcSE"].to_numpy()[~plateau]
    assert np.median(np.abs(se / se_r - 1)) <= 0.01
    conv = np.asarray(nat.info["converged"])
    assert conv[(r_disp["betaIter"] >= 100).to_numpy()].all()  # optim converged, as in R
    assert r_disp["betaConv"].dropna().astype(bool).all()


def test_parametric_trend_without_convergence_falls_back_to_local(monkeypatch):
    # covers _native_trend._parametric's "did not converge in 10 rounds" (R's
    # parametricDispersionFit stops after iter > 10 and estimateDispersionsFit uses the local
    # fit): kills `it > 10` and its number, and the fallback's wiring
    import simpert.de._native_trend as nt

    rng = np.random.default_rng(4)
    means = np.exp(rng.uniform(0.0, 8.0, 500))
    disps = (0.05 + 1.0 / means) * np.exp(rng.normal(0.0, 0.5, 500))
    assert nt.fit_trend(means, disps).kind == "parametric"  # converges when left alone

    calls = []
    real = nt._gamma_identity_glm

    def never_converged(*args, **kwargs):
        calls.append(1)
        coef, _ = real(*args, **kwargs)
        return coef, False

    monkeypatch.setattr(nt, "_gamma_identity_glm", never_converged)
    trend = nt.fit_trend(means, disps)
    # R: iter counts the rounds after the first; the error comes when iter exceeds 10, so 11 fits
    assert len(calls) == 11
    assert trend.kind == "local" and trend.requested == "parametric"
    local = nt.fit_trend(means, disps, fit_type="local")
    np.testing.assert_array_equal(trend(means), local(means))


def test_trend_refused_when_no_estimate_is_above_a_hundred_times_min_disp():
    # R's estimateDispersionsFit stops when no gene-wise estimate exceeds 100 * minDisp (strictly):
    # kills the `>` -> `>=` and number mutants of that rule in _native_trend.fit_trend
    from simpert.de._native_trend import fit_trend

    means = np.geomspace(1.0, 1e3, 50)
    for fit_type in ("parametric", "local", "mean"):
        with pytest.raises(ValueError, match="above 1e-6"):
            fit_trend(means, np.full(50, 100 * 1e-8), fit_type=fit_type)
        # half a percent above the bound: used
        assert fit_trend(means, np.full(50, 1.005e-6), fit_type=fit_type).kind in ("local", "mean")
    # one estimate just above the bound is enough to fit; the mean trend then averages the
    # estimates above 10 * minDisp (R's useForMean), a 0.1% trimmed mean by hand
    disps = np.r_[np.full(49, 100 * 1e-8), 0.5]
    t = fit_trend(means, disps, fit_type="mean")
    vals = np.sort(disps[disps > 10 * 1e-8])
    k = int(np.floor(vals.size * 0.001))
    assert t.kind == "mean" and t.coef[0] == pytest.approx(vals[k:vals.size - k].mean(), rel=1e-12)


def test_cox_reid_term_follows_r_determinant_overflow():
    # R forms det(X'WX) as a double: with 101 levels of large weight sums it overflows to Inf and
    # the Cox-Reid term -log(det)/2 is -Inf, the derivative NaN (the other end of the range from
    # the underflow in test_de_native_edges.py): kills mutants of `logdet > _LOG_DET_MAX` and -np.inf
    from simpert.de._native_nbloglik import log_posterior, log_posterior_derivs

    starts = np.arange(0, 202, 2)
    y = np.full((1, 202), 10**9)
    mu = np.full((1, 202), 1e9)
    a = np.array([np.log(1e-8)])
    # R's determinant by hand: X'WX is diagonal for one factor in cell-means coding, so det is
    # the product of the level sums of w = mu / (1 + alpha mu), formed in double precision
    w = mu / (1.0 + np.exp(a[0]) * mu)
    with np.errstate(over="ignore"):
        det = np.prod(w.reshape(101, 2).sum(axis=1))
    assert det == np.inf
    lp = log_posterior(y, mu, starts, a, r_det=True)
    g, _ = log_posterior_derivs(y, mu, starts, a, r_det=True)
    assert lp[0] == -np.inf and np.isnan(g[0])
    # one level fewer in range: a finite product, and the term equals -log(det) / 2 by hand
    starts2, y2, mu2 = np.arange(0, 40, 2), y[:, :40], mu[:, :40]
    det2 = np.prod((mu2 / (1.0 + np.exp(a[0]) * mu2)).reshape(20, 2).sum(axis=1))
    assert np.isfinite(det2)
    no_cr = log_posterior(y2, mu2, starts2, a, use_cr=False)
    with_cr = log_posterior(y2, mu2, starts2, a, r_det=True)
    # (a difference of two log likelihoods of size 1e10: absolute tolerance)
    assert with_cr[0] - no_cr[0] == pytest.approx(-0.5 * np.log(det2), abs=1e-4)
    assert with_cr[0] == pytest.approx(log_posterior(y2, mu2, starts2, a)[0], rel=1e-12)
