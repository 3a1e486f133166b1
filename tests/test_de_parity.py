"""Column-by-column parity of the native engine with R DESeq2 1.38.3 on every golden design.

The golden files (``tests/golden``, made by ``make_golden.R`` from ``make_inputs.py``) hold
R's ``results()`` per contrast, the dispersions at every stage, Cook's summaries, size
factors, the independent-filtering threshold and the trend. The designs reach the branches
that decide parity: the parametric trend failing over to the local fit (lowcount), explicit
local and mean trends (localfit, meanfit), a prior variance above its 0.25 floor (lowcount,
spiky, screen100), borderline Cook's outliers with and without replacement (outliers,
groups7743), the minmu clamp (lowcount, allzero), size factors over a 10-fold range
(libsize10x), the dispersion line search's iteration cap (lowcount, allzero, groups7743),
IRLS fits refitted by optim (spiky), all-zero contrasts (allzero) and 101 levels (screen100),
where R's double-precision det(X'WX) of the Cox-Reid term underflows (``r_det_range=True``
reproduces it; the default log determinant departs from R there, and only there).

Why the tolerances hold across BLAS builds and CPUs: the native engine replays R's
algorithms (the same line search, IRLS stopping rule and grid), and on this machine the gap
is at the rounding of the golden files (about 1e-9 in every column). On another R build,
rounding differences of about 1e-12 in R's QR steps can flip a discrete decision for a single
gene (an IRLS or line-search stopping test met in one iteration rather than the next, or the
line search's iteration cap, which swaps the estimate for a grid value up to 7% away). Such a
flip moves that gene's dispersion by at most a few percent, its SE by half that, and its LFC
hardly at all. So every per-gene check below is a median, a high quantile or a share of
genes, with the maximum left free by a few genes, while medians and quantiles are held to
0.1-1%, far above the measured 1e-9 and far below what a wrong formula produces.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import fdtri

from simpert.de import deseq
from test_de_native import GOLDEN, _load, _results_file

DESIGNS = ["two_groups", "screen20", "outliers", "small_df", "lowcount", "libsize10x", "screen100",
           "groups7743", "allzero", "meanfit", "localfit", "spiky"]

_CACHE: dict = {}


def _options(name: str) -> dict:
    f = GOLDEN / f"{name}_options.csv"
    return pd.read_csv(f).set_index("key")["value"].to_dict() if f.exists() else {}


def _fit(name: str):
    """Native fit and R's golden tables for a design (cached)."""
    if name not in _CACHE:
        ft = _options(name).get("fitType", "parametric")
        nat = deseq(_load(name), shrink="normal", fit_type=ft, r_det_range=True)
        r_res = pd.read_csv(_results_file(name))
        r_disp = pd.read_csv(GOLDEN / f"{name}_dispersions.csv").set_index("gene").loc[nat.genes]
        r_sf = pd.read_csv(GOLDEN / f"{name}_sizefactors.csv").set_index("sample")["sizeFactor"]
        r_filt = pd.read_csv(GOLDEN / f"{name}_filter.csv").set_index("perturbation").loc[nat.perturbations]
        info = pd.read_csv(GOLDEN / f"{name}_info.csv").set_index("key")["value"]
        t = nat.table.merge(r_res, on=["perturbation", "gene"], suffixes=("", "_r"))
        t["beta_iter_r"] = r_disp.loc[t["gene"].astype(str), "betaIter"].to_numpy()
        _CACHE[name] = (nat, t, r_disp, r_sf, r_filt, info)
    return _CACHE[name]


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b) & (b != 0)
    return np.abs(a[ok] / b[ok] - 1.0)


@pytest.mark.parametrize("name", DESIGNS)
def test_size_factors_and_base_mean(name):
    nat, _, r_disp, r_sf, _, _ = _fit(name)
    # median of ratios and means: no iteration, only the golden files' 10-digit rounding
    assert _rel(nat.size_factors[r_sf.index], r_sf).max() <= 1e-6
    assert _rel(nat.base_mean, r_disp["baseMean"]).max() <= 1e-6


@pytest.mark.parametrize("stage,column", [("genewise", "dispGeneEst"), ("trend", "dispFit"),
                                          ("map", "dispMAP"), ("final", "dispersion")])
@pytest.mark.parametrize("name", DESIGNS)
def test_dispersions_each_stage(name, stage, column):
    nat, _, r_disp, *_ = _fit(name)
    a, b = nat.dispersions[stage].to_numpy(), r_disp[column].to_numpy()
    assert np.array_equal(np.isnan(a), np.isnan(b))
    rel = _rel(a, b)
    assert np.median(rel) <= 0.01  # measured: below 1e-8
    assert np.mean(rel <= 0.01) >= 0.97  # a few genes may flip a discrete decision elsewhere


@pytest.mark.parametrize("name", DESIGNS)
def test_trend_and_priors(name):
    nat, _, _, _, _, info = _fit(name)
    assert nat.info["trend"] == info["fitType"]
    if info["fitType"] == "parametric":
        assert nat.info["asymptDisp"] == pytest.approx(float(info["asymptDisp"]), rel=1e-3)
        assert nat.info["extraPois"] == pytest.approx(float(info["extraPois"]), rel=1e-3)
    if info["fitType"] == "mean":
        assert nat.info["mean_disp"] == pytest.approx(float(info["meanDisp"]), rel=1e-3)
    # medians of log residuals: a single flipped gene moves them by far less than 1e-3
    assert nat.info["var_log_disp"] == pytest.approx(float(info["varLogDispEsts"]), rel=1e-3)
    if name != "small_df":  # small_df: R's simulated branch (R's random numbers), see test_de_native
        assert nat.info["prior_var"] == pytest.approx(float(info["dispPriorVar"]), rel=1e-3)
    assert nat.info["beta_prior_var"] == pytest.approx(float(info["betaPriorVar"]), rel=1e-3)


@pytest.mark.parametrize("name", DESIGNS)
def test_log2fc(name):
    _, t, *_ = _fit(name)
    assert (t["log2fc"].isna() != t["log2FoldChange"].isna()).sum() == 0
    x, y = t["log2fc"].to_numpy(), t["log2FoldChange"].to_numpy()
    ok = np.isfinite(x) & np.isfinite(y) & (t["beta_iter_r"].to_numpy() < 100)
    big = ok & (t["baseMean"].to_numpy() >= 10)
    if big.sum() > 2:
        assert np.corrcoef(x[big], y[big])[0, 1] >= 0.999
        assert np.max(np.abs(x[big] - y[big])) <= 0.01  # measured: 5e-9
    # every base mean (the minmu clamp decides the low ones)
    assert np.corrcoef(x[ok], y[ok])[0, 1] >= 0.999
    assert np.quantile(np.abs(x[ok] - y[ok]), 0.99) <= 0.01


@pytest.mark.parametrize("name", DESIGNS)
def test_lfc_se_stat_pvalue(name):
    _, t, *_ = _fit(name)
    se = _rel(t["lfc_se"], t["lfcSE"])
    assert np.median(se) <= 1e-3 and np.quantile(se, 0.99) <= 0.01 and se.max() <= 0.05
    st = np.abs(t["stat"] - t["stat_r"]).to_numpy()
    st = st[np.isfinite(st)] / np.maximum(1.0, np.abs(t["stat_r"].to_numpy()[np.isfinite(st)]))
    assert np.quantile(st, 0.99) <= 0.01 and st.max() <= 0.05
    lp, lr = np.log10(t["pvalue"].to_numpy()), np.log10(t["pvalue_r"].to_numpy())
    ok = np.isfinite(lp) & np.isfinite(lr)
    d = np.abs(lp[ok] - lr[ok]) / np.maximum(1.0, np.abs(lr[ok]))  # log scale, relative in the tail
    assert np.quantile(d, 0.99) <= 0.01 and d.max() <= 0.1


@pytest.mark.parametrize("name", DESIGNS)
def test_calls_and_na_pattern(name):
    _, t, *_ = _fit(name)
    assert np.mean((t["padj"] < 0.05) == (t["padj_r"] < 0.05)) >= 0.995
    assert np.mean(t["padj"].isna() == t["padj_r"].isna()) >= 0.995
    assert np.mean(t["pvalue"].isna() == t["pvalue_r"].isna()) >= 0.995


@pytest.mark.parametrize("name", DESIGNS)
def test_independent_filter_threshold(name):
    nat, _, _, _, r_filt, _ = _fit(name)
    thr = np.asarray(nat.info["filter_threshold"], dtype=float)
    # the threshold is a quantile of the base means chosen from rejection counts at alpha;
    # p-values agree to 1e-9, so the same quantile is chosen
    np.testing.assert_allclose(thr, r_filt["filterThreshold"].to_numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", DESIGNS)
def test_shrunken_lfc(name):
    _, t, *_ = _fit(name)
    x, y = t["log2fc_shrunk"].to_numpy(), t["log2FoldChange_normal"].to_numpy()
    ok = np.isfinite(x) & np.isfinite(y) & (t["beta_iter_r"].to_numpy() < 100)
    assert np.corrcoef(x[ok], y[ok])[0, 1] >= 0.999
    assert np.quantile(np.abs(x[ok] - y[ok]), 0.99) <= 0.01
    se = _rel(t["lfc_se_shrunk"], t["lfcSE_normal"])
    assert np.median(se) <= 1e-3 and np.quantile(se, 0.99) <= 0.01


@pytest.mark.parametrize("name", DESIGNS)
def test_cooks_flags(name):
    nat, t, r_disp, *_ = _fit(name)
    mc_r = r_disp["maxCooks"].to_numpy()
    mc = np.asarray(nat.info["max_cooks"])
    assert np.mean(np.isnan(mc) == np.isnan(mc_r)) >= 0.995
    assert np.median(_rel(mc, mc_r)) <= 1e-3
    rep = r_disp["replace"]
    if rep.notna().any():  # R's replace: a Cook's distance above the cutoff in any sample
        ok = rep.notna().to_numpy()
        flag = np.asarray(nat.info["any_cooks_outlier"])[ok]
        assert np.mean(flag == rep[ok].astype(bool).to_numpy()) >= 0.995


def test_designs_reach_their_branches():
    """Each branch the designs are meant to reach is reached in R's output."""
    assert _fit("lowcount")[5]["fitType"] == "local"  # parametric failed in R
    assert _fit("localfit")[5]["fitType"] == "local"
    assert _fit("meanfit")[5]["fitType"] == "mean"
    for name in ("lowcount", "spiky"):
        assert float(_fit(name)[5]["dispPriorVar"]) > 0.25
    assert (_fit("lowcount")[2]["dispGeneIter"] >= 100).sum() >= 5  # line-search cap
    assert (_fit("spiky")[2]["betaIter"] >= 100).sum() >= 3  # IRLS cap, optim refit
    assert (_fit("screen100")[2]["dispIter"] >= 100).sum() >= 1  # MAP line-search cap
    sf = _fit("libsize10x")[3]
    assert sf.max() / sf.min() > 5
    for name in ("outliers", "groups7743"):
        assert _fit(name)[2]["replace"].eq(True).sum() > 0
        assert _fit(name)[1]["pvalue_r"].isna().any()
    t = _fit("allzero")[1]
    assert ((t["log2FoldChange"] == 0) & (t["pvalue_r"] == 1)).sum() >= 30


def test_all_zero_contrast_rule():
    nat, t, *_ = _fit("allzero")
    zr = (t["log2FoldChange"] == 0) & (t["stat_r"] == 0) & (t["pvalue_r"] == 1)
    zn = pd.Series(np.asarray(nat.info["contrast_zero"]).reshape(-1)[t.index], index=t.index)
    assert zr.sum() >= 30
    assert (zr == zn).all()
    sub = t[zn]
    assert (sub["log2fc"] == 0).all() and (sub["stat"] == 0).all() and (sub["pvalue"] == 1).all()
    assert (sub["log2fc_shrunk"] == 0).all() and (sub["log2FoldChange_normal"] == 0).all()
    np.testing.assert_array_equal(sub["padj"].isna(), sub["padj_r"].isna())
    np.testing.assert_allclose(sub["padj"].dropna(), sub["padj_r"].dropna(), rtol=1e-6)
    np.testing.assert_allclose(sub["lfc_se"], sub["lfcSE"], rtol=1e-3)  # SE kept, as in R


def test_optim_refit_genes_match_r():
    """Genes whose IRLS hit its cap in R are refitted by optim there and here."""
    nat, t, r_disp, *_ = _fit("spiky")
    capped = t["beta_iter_r"] >= 100
    sub = t[capped & t["log2FoldChange"].notna()]
    assert len(sub) >= 6
    x, y = sub["log2fc"].to_numpy(), sub["log2FoldChange"].to_numpy()
    # an LFC on the likelihood's plateau (a level of zeros, |LFC| > 15) is where the optimiser
    # happens to stop: 0.16 apart on -22 measured; elsewhere the optimum is the same
    plateau = np.abs(y) > 15
    assert np.max(np.abs(x - y)[~plateau]) <= 0.01
    assert np.max(np.abs(x - y)[plateau] / np.abs(y[plateau])) <= 0.02
    conv = np.asarray(nat.info["converged"])
    rc = r_disp["betaConv"]
    assert rc.dropna().astype(bool).all()  # optim converged in R
    assert conv[rc.notna().to_numpy()].all()


def test_cooks_cutoff_is_f_quantile():
    nat, t, r_disp, *_ = _fit("groups7743")
    m, L = nat.size_factors.size, len(nat.perturbations) + 1
    cut = fdtri(L, m - L, 0.99)
    out = np.asarray(nat.info["cooks_outlier"])
    assert out.any()
    assert np.all(np.asarray(nat.info["max_cooks"])[out] > cut)


@pytest.mark.parametrize("name", DESIGNS)
def test_cooks_na_genes_match_r(name):
    """Genes whose p-values R sets NA for a Cook's outlier: the same genes, up to one flip."""
    nat, t, *_ = _fit(name)
    tested = t["log2FoldChange"].notna()
    na_r = set(t.loc[tested & t["pvalue_r"].isna(), "gene"].astype(str))
    na_n = set(t.loc[tested & t["pvalue"].isna(), "gene"].astype(str))
    # maxCooks lies at least 3% from the cutoff in every design (measured); only a BLAS flip
    # of a dispersion could move one gene across
    assert len(na_r ^ na_n) <= 1


def test_default_log_determinant_departs_only_where_r_det_is_out_of_range():
    """The default sums the log determinant; it equals R's wherever R's det is a finite double."""
    for name in ("two_groups", "screen20", "groups7743"):
        a = deseq(_load(name))
        b = _fit(name)[0]
        np.testing.assert_array_equal(a.dispersions.to_numpy(), b.dispersions.to_numpy())
        np.testing.assert_array_equal(a.matrices["pvalue"], b.matrices["pvalue"])
    # 101 levels: R's det underflows for a quarter of the genes during the line search and R
    # falls back to its coarse grid (up to 7% from the optimum); the log determinant keeps the
    # exact optimum; the downstream results stay within the parity tolerances
    nat, t, r_disp, *_ = _fit("screen100")
    exact = deseq(_load("screen100"))
    capped = r_disp["dispGeneIter"].to_numpy() >= 100
    rel = _rel(exact.dispersions["genewise"], r_disp["dispGeneEst"])
    assert capped.mean() > 0.2
    assert np.median(rel) <= 0.01 and rel.max() <= 0.1
    x, y = exact.matrices["log2fc"].ravel(), nat.matrices["log2fc"].ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    assert np.max(np.abs(x[ok] - y[ok])) <= 0.01


@pytest.mark.parametrize("name", ["lowcount", "two_groups", "small_df", "groups7743", "screen100"])
def test_line_search_cap_and_first_step_genes_match_r(name):
    """Genes R re-estimates on its grid (line search at its cap, or stopped after one step)."""
    nat, _, r_disp, *_ = _fit(name)
    for stage, column, it_col, cond in [("genewise", "dispGeneEst", "dispGeneIter", lambda i: (i >= 100) | (i == 1)),
                                        ("map", "dispMAP", "dispIter", lambda i: i >= 100)]:
        sel = cond(r_disp[it_col].to_numpy())
        if not sel.any():
            continue
        rel = _rel(nat.dispersions[stage].to_numpy()[sel], r_disp[column].to_numpy()[sel])
        # grid values are 0.13 apart in log: a wrong branch misses by several percent
        assert np.mean(rel <= 1e-3) >= 0.9
