"""The native DESeq2 engine: parity with R DESeq2 (golden files and a live run) and unit checks
of each step against independent computations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import polygamma

from simpert.de import DEDataset, deseq
from simpert.de._native_filtering import bh
from simpert.de._native_glm import contrast_se, irls_one_factor
from simpert.de._native_nbloglik import log_posterior, log_posterior_derivs, trigamma
from simpert.de._native_shrink import weighted_upper_quantile_var
from simpert.de._native_sizefactors import median_of_ratios

GOLDEN = Path(__file__).parent / "golden"
DESIGNS = ["two_groups", "screen20", "outliers", "small_df"]


def _load(name: str, directory: Path = GOLDEN):
    counts = pd.read_csv(directory / f"{name}_counts.csv", index_col=0)
    coldata = pd.read_csv(directory / f"{name}_coldata.csv")
    ds = DEDataset.from_arrays(counts[coldata["sample"]].to_numpy().T, coldata.set_index("sample"),
                               genes=counts.index)
    return ds


def _results_file(name: str, directory: Path = GOLDEN) -> Path:
    """R's results table of a design (gzip-compressed for the large designs)."""
    plain = directory / f"{name}_results.csv"
    return plain if plain.exists() else directory / f"{name}_results.csv.gz"


def _golden(name: str, directory: Path = GOLDEN):
    res = pd.read_csv(_results_file(name, directory))
    disp = pd.read_csv(directory / f"{name}_dispersions.csv").set_index("gene")
    sf = pd.read_csv(directory / f"{name}_sizefactors.csv").set_index("sample")["sizeFactor"]
    info = pd.read_csv(directory / f"{name}_info.csv").set_index("key")["value"]
    return res, disp, sf, info


_CACHE: dict = {}


def _native(name):
    if name not in _CACHE:
        _CACHE[name] = deseq(_load(name), shrink="normal")
    return _CACHE[name]


def _parity(native, r_res, r_disp, r_sf):
    """The parity figures of the issue, native against R."""
    out = {}
    out["sf_maxdiff"] = float(np.max(np.abs(native.size_factors[r_sf.index].to_numpy() - r_sf.to_numpy())))
    t = native.table.merge(r_res, on=["perturbation", "gene"], suffixes=("", "_r"))
    big = t["baseMean"] >= 10
    x, y = t["log2fc"].to_numpy(), t["log2FoldChange"].to_numpy()
    ok = big & np.isfinite(x) & np.isfinite(y)
    out["lfc_r"] = float(np.corrcoef(x[ok], y[ok])[0, 1])
    out["lfc_maxdiff"] = float(np.max(np.abs(x[ok] - y[ok])))
    xs, ys = t["log2fc_shrunk"].to_numpy(), t["log2FoldChange_normal"].to_numpy()
    oks = np.isfinite(xs) & np.isfinite(ys)
    out["shrunk_r"] = float(np.corrcoef(xs[oks], ys[oks])[0, 1])
    out["padj_agree"] = float(np.mean((t["padj"] < 0.05) == (t["padj_r"] < 0.05)))
    out["pvalue_na_mismatch"] = int((t["pvalue"].isna() != t["pvalue_r"].isna()).sum())
    out["lfc_na_mismatch"] = int((t["log2fc"].isna() != t["log2FoldChange"].isna()).sum())
    d = native.dispersions.join(r_disp)
    ok = d["dispersion"].notna()
    out["disp_median_rel"] = float(np.median(np.abs(d["final"][ok] / d["dispersion"][ok] - 1)))
    out["basemean_maxrel"] = float(np.nanmax(np.abs(native.base_mean[d.index] / d["baseMean"] - 1)
                                             [d["baseMean"] > 0]))
    return out


# --------------------------------------------------------------------------- golden parity
@pytest.mark.parametrize("name", DESIGNS)
def test_native_matches_r_golden(name):
    r_res, r_disp, r_sf, _ = _golden(name)
    p = _parity(_native(name), r_res, r_disp, r_sf)
    # the golden files hold 10 significant digits
    assert p["sf_maxdiff"] < 1e-8
    assert p["basemean_maxrel"] < 1e-8
    assert p["lfc_r"] >= 0.999
    assert p["lfc_maxdiff"] <= 0.01
    assert p["disp_median_rel"] <= 0.01
    assert p["padj_agree"] >= 0.99
    assert p["shrunk_r"] >= 0.999
    assert p["lfc_na_mismatch"] == 0


@pytest.mark.parametrize("name", ["screen20", "outliers"])
def test_cooks_na_pattern_matches_r(name):
    r_res, *_ = _golden(name)
    merged = _native(name).table.merge(r_res, on=["perturbation", "gene"], suffixes=("", "_r"))
    assert merged["pvalue_r"].isna().any()
    assert (merged["pvalue"].isna() == merged["pvalue_r"].isna()).mean() >= 0.999


def test_trend_and_prior_match_r():
    for name in ["two_groups", "screen20"]:
        _, _, _, info = _golden(name)
        res = _native(name)
        assert res.info["trend"] == info["fitType"]
        assert res.info["asymptDisp"] == pytest.approx(float(info["asymptDisp"]), rel=0.01)
        assert res.info["extraPois"] == pytest.approx(float(info["extraPois"]), rel=0.01)
        assert res.info["prior_var"] == pytest.approx(float(info["dispPriorVar"]), rel=0.01)
        assert res.info["beta_prior_var"] == pytest.approx(float(info["betaPriorVar"]), rel=0.01)


def test_outlier_design_replaces_and_flags():
    res = _native("outliers")
    assert res.info["replaced"].sum() > 0  # 8-sample levels: counts replaced and refitted
    assert res.info["cooks_outlier"].sum() > 0  # outliers in the 3-sample level: NA p-values


def test_all_zero_genes_are_na_with_zero_base_mean():
    res = _native("screen20")
    zero = res.base_mean == 0
    assert zero.sum() == 5
    t = res.table
    sub = t[t["gene"].isin(res.genes[zero.to_numpy()])]
    assert sub[["log2fc", "lfc_se", "stat", "pvalue", "padj"]].isna().all().all()
    assert res.dispersions.loc[zero.to_numpy()].isna().all().all()


def test_results_schema_and_summary():
    res = _native("screen20")
    assert list(res.table.columns) == ["perturbation", "gene", "base_mean", "log2fc", "lfc_se", "stat",
                                       "pvalue", "padj", "log2fc_shrunk", "lfc_se_shrunk"]
    assert len(res.table) == 20 * 600
    assert list(res.dispersions.columns) == ["genewise", "trend", "map", "final"]
    s = res.summary()
    assert len(s.per_perturbation) == 20
    assert "asymptDisp" in s.dispersion
    assert "DE calls" in str(s)
    assert res.matrix("padj").shape == (20, 600)


# --------------------------------------------------------------------------- live R
def test_live_r_matches_native(rscript, tmp_path):
    """Re-run the committed R script on a fresh small design and compare with native."""
    sys.path.insert(0, str(GOLDEN))
    try:
        from make_inputs import simulate
    finally:
        sys.path.pop(0)
    counts, coldata = simulate({"control": 3, "A": 3, "B": 3}, 300, np.random.default_rng(7))
    counts.to_csv(tmp_path / "live_counts.csv")
    coldata.to_csv(tmp_path / "live_coldata.csv", index=False)
    out = subprocess.run([rscript, str(GOLDEN / "make_golden.R"), str(tmp_path), "live"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    r_res, r_disp, r_sf, _ = _golden("live", tmp_path)
    p = _parity(deseq(_load("live", tmp_path), shrink="normal"), r_res, r_disp, r_sf)
    assert p["sf_maxdiff"] < 1e-8
    assert p["lfc_r"] >= 0.999 and p["lfc_maxdiff"] <= 0.01
    assert p["disp_median_rel"] <= 0.01
    assert p["padj_agree"] >= 0.99
    assert p["shrunk_r"] >= 0.999


# --------------------------------------------------------------------------- unit checks
def test_trigamma_matches_scipy():
    # the documented 2e-10: every term of the series counts (halving the x^-9 term is 9e-9
    # off at x = 6, where the recurrence hands over)
    x = np.concatenate([np.linspace(1e-3, 10, 500), np.geomspace(10, 1e7, 500), np.linspace(5.99, 6.01, 50)])
    np.testing.assert_allclose(trigamma(x), polygamma(1, x), rtol=2e-10)


def test_log_posterior_derivatives_match_finite_differences():
    rng = np.random.default_rng(0)
    y = rng.negative_binomial(4, 0.2, size=(5, 9)).astype(float)
    mu = rng.uniform(5, 30, size=y.shape)
    starts = np.array([0, 3, 6])
    a = np.array([-4.0, -2.0, -0.5, 0.5, 1.5])
    pm = np.full(5, -1.0)
    g, h = log_posterior_derivs(y, mu, starts, a, pm, 0.7)
    e = 1e-5
    f = lambda aa: log_posterior(y, mu, starts, aa, pm, 0.7)  # noqa: E731
    gf = lambda aa: log_posterior_derivs(y, mu, starts, aa, pm, 0.7)[0]  # noqa: E731
    np.testing.assert_allclose(g, (f(a + e) - f(a - e)) / (2 * e), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h, (gf(a + e) - gf(a - e)) / (2 * e), rtol=1e-5, atol=1e-7)


def test_cox_reid_term_equals_log_det_of_dense_design():
    rng = np.random.default_rng(1)
    y = rng.poisson(20, size=(2, 7)).astype(float)
    mu = rng.uniform(10, 30, size=y.shape)
    starts = np.array([0, 2, 5])
    a = np.array([-2.0, -1.0])
    with_cr = log_posterior(y, mu, starts, a)
    without = log_posterior(y, mu, starts, a, use_cr=False)
    X = np.zeros((7, 3))
    X[:, 0] = 1
    X[2:5, 1] = 1
    X[5:, 2] = 1  # treatment coding: same column space, log det differs by a constant 0
    for i in range(2):
        w = mu[i] / (1 + np.exp(a[i]) * mu[i])
        assert with_cr[i] - without[i] == pytest.approx(-0.5 * np.linalg.slogdet(X.T @ np.diag(w) @ X)[1])


def test_contrast_se_equals_dense_sandwich():
    rng = np.random.default_rng(2)
    W = rng.gamma(2, 3, size=(4, 5))
    for ind in (np.array([False, True, True, True, True]), np.ones(5, bool)):
        lam = np.full(5, 0.3)
        se = contrast_se(W, ind, 1e-3, lam, np.array([1, 4]))
        cols = np.flatnonzero(ind)
        X = np.zeros((5, 1 + cols.size))
        X[:, 0] = 1
        for k, lv in enumerate(cols):
            X[lv, 1 + k] = 1
        for gi in range(4):
            B = X.T @ np.diag(W[gi]) @ X
            Ai = np.linalg.inv(B + np.diag(np.r_[1e-3, lam[cols]]))
            S = Ai @ B @ Ai
            for k, i in enumerate([1, 4]):
                c = np.zeros(1 + cols.size)
                c[1 + list(cols).index(i)] = 1
                if ind[0]:
                    c[1 + list(cols).index(0)] = -1
                assert se[k, gi] == pytest.approx(np.sqrt(c @ S @ c), rel=1e-10)


def test_irls_matches_statsmodels_nb_glm():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    sizes = np.array([4, 3, 5])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    sf = rng.uniform(0.6, 1.5, sizes.sum())
    y = rng.negative_binomial(5, 5 / (5 + 80 * sf), size=(3, sizes.sum())).astype(float)
    alpha = np.array([0.1, 0.2, 0.05])
    L = 3
    eta, _ = irls_one_factor(y, sf, alpha, starts, sizes, np.array([False, True, True]), 0.0, np.zeros(L),
                             criterion="eta", tol=1e-12)
    X = np.zeros((sizes.sum(), 3))
    X[:, 0] = 1
    X[4:7, 1] = 1
    X[7:, 2] = 1
    for i in range(3):
        fit = sm.GLM(y[i], X, family=sm.families.NegativeBinomial(alpha=alpha[i]), offset=np.log(sf)).fit(tol=1e-12)
        np.testing.assert_allclose(eta[i, 1:] - eta[i, 0], fit.params[1:], atol=1e-7)
        np.testing.assert_allclose(eta[i, 0], fit.params[0], atol=1e-7)
        W = np.add.reduceat(np.exp(X @ fit.params + np.log(sf)) / (1 + alpha[i] * np.exp(X @ fit.params + np.log(sf))),
                            starts)
        se = contrast_se(W[None, :], np.array([False, True, True]), 0.0, np.zeros(L), np.array([1, 2]))[:, 0]
        np.testing.assert_allclose(se, fit.bse[1:], rtol=1e-6)


def test_bh_matches_statsmodels_with_nan():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(4)
    p = rng.uniform(size=(3, 200)) ** 3
    p[:, ::17] = np.nan
    out = bh(p)
    for k in range(3):
        ok = np.isfinite(p[k])
        np.testing.assert_allclose(out[k, ok], multipletests(p[k, ok], method="fdr_bh")[1], rtol=1e-12)
        assert np.isnan(out[k, ~ok]).all()


def test_size_factors_against_direct_formula():
    rng = np.random.default_rng(5)
    y = rng.poisson(rng.uniform(1, 50, (100, 1)) * rng.uniform(0.5, 2, (1, 6))).astype(float)
    y[:3, 0] = 0
    sf = median_of_ratios(y)
    keep = (y > 0).all(axis=1)
    geo = np.exp(np.log(y[keep]).mean(axis=1))
    np.testing.assert_allclose(sf, np.median(y[keep] / geo[:, None], axis=0), rtol=1e-12)


def test_weighted_quantile_matches_hmisc_rule():
    # equal weights: Hmisc's wtd.quantile reduces to R's type-7 quantile
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (2, 301))
    v = weighted_upper_quantile_var(x, np.ones(301))
    q = np.quantile(np.abs(x), 0.95, axis=1)
    np.testing.assert_allclose(v, (q / 1.959963984540054) ** 2, rtol=1e-10)


def test_threads_give_identical_results():
    ds = _load("screen20")
    a = deseq(ds, n_jobs=1)
    b = deseq(ds, n_jobs=2)
    np.testing.assert_array_equal(a.matrices["log2fc"], b.matrices["log2fc"])
    np.testing.assert_array_equal(a.matrices["padj"], b.matrices["padj"])


def test_lowess_rows_matches_r_lowess(rscript, tmp_path):
    from simpert.de._native_filtering import lowess_rows

    rng = np.random.default_rng(8)
    theta = np.linspace(0.1, 0.95, 50)
    Y = np.cumsum(rng.integers(0, 30, (6, 50)), axis=1)[:, ::-1].astype(float) + rng.normal(0, 40, (6, 50))
    Y[2, 10] = 1e4  # an outlier: robustness weights matter
    np.savetxt(tmp_path / "y.csv", Y, delimiter=",")
    code = (f'Y <- as.matrix(read.csv("{tmp_path / "y.csv"}", header = FALSE)); '
            'th <- seq(0.1, 0.95, length = 50); '
            'out <- t(apply(Y, 1, function(y) lowess(th, y, f = 1/5)$y)); '
            f'write.csv(out, "{tmp_path / "r.csv"}", row.names = FALSE)')
    out = subprocess.run([rscript, "-e", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    ref = np.loadtxt(tmp_path / "r.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(lowess_rows(theta, Y), ref, atol=1e-8)


@pytest.mark.parametrize("delta", [0.03, 0.2])
def test_lowess_rows_interpolation_and_ties_match_r_lowess(rscript, tmp_path, delta):
    # R's delta rule on clustered abscissae: points within delta of the last estimate are
    # interpolated (from the first point on), tied abscissae copied; 1e-15 agreement is
    # typical, 1e-10 allows another BLAS or libm
    from simpert.de._native_filtering import _sweep, lowess_rows

    g = np.random.default_rng(3)
    x = np.sort(np.concatenate([g.uniform(0, 0.1, 15), g.uniform(0.5, 1, 30)]))
    x = np.concatenate([x[:20], np.repeat(x[20:], 2)])  # ties after the estimated points past 20
    Y = np.vstack([np.sin(3 * x) + g.normal(0, 0.2, x.size), x ** 2 + g.normal(0, 0.1, x.size)])
    d = delta * (x[-1] - x[0])
    _, _, fill = _sweep(x, max(2, int(0.3 * x.size + 1e-7)), d)
    assert any(last == 0 for last, _ in fill)  # interpolation from the first point
    assert any(last < 0 for last, _ in fill) or delta > 0.1  # tie copies (a wide delta interpolates them)
    np.savetxt(tmp_path / "x.txt", x, fmt="%.17g")
    np.savetxt(tmp_path / "y.txt", Y.T, fmt="%.17g")
    code = (f'x <- scan("{tmp_path / "x.txt"}", quiet = TRUE); Y <- as.matrix(read.table("{tmp_path / "y.txt"}")); '
            f'out <- sapply(1:2, function(j) lowess(x, Y[, j], f = 0.3, iter = 3, delta = {float(d)!r})$y); '
            f'write.table(out, "{tmp_path / "r.txt"}", row.names = FALSE, col.names = FALSE)')
    out = subprocess.run([rscript, "-e", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    ref = np.loadtxt(tmp_path / "r.txt").T
    np.testing.assert_allclose(lowess_rows(x, Y, f=0.3, nsteps=3, delta=d), ref, rtol=0, atol=1e-10)
