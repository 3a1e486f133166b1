"""fit_screen against a plain dense re-computation of the estimators its module documents.

Every quantity of the fit is recomputed here from the module docstring of
``simpert/sim/_estimate.py`` with numpy and pandas on dense arrays (group means by pandas
groupby, variances with ddof 1, the gamma law by scipy's maximum likelihood), on a screen
shaped like a user's: rows shuffled, its own control label, no ``uns``. The dispersion trend
(an IRLS fit, tested on exact moments in test_sim_estimate.py) is taken from the fit and
enters the library-size correction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import simpert as sp


def _reference(X, pert, control, target, min_mean, systematic_sd, a0, a1):
    ctrl = pert == control
    tot = X.sum(axis=1)
    logt = np.log(np.maximum(tot, 1.0))
    gm = logt[ctrl].mean()
    s = tot / np.exp(gm)
    s[s <= 0] = 1.0
    Z = X[ctrl] / s[ctrl, None]
    m = Z.mean(axis=0)
    v = pd.DataFrame(Z).var(axis=0, ddof=1).to_numpy()
    inv_s = np.mean(1.0 / s[ctrl])
    with np.errstate(divide="ignore", invalid="ignore"):
        gene_disp = np.where(m > 0, (v - m * inv_s) / m ** 2, np.nan)
    base = np.maximum(m, 1e-3)
    M = base.sum()
    noise = np.mean(1.0 / (s[ctrl] * M)) + np.sum((a0 + a1 / base) * base ** 2) / M ** 2
    raw_sd = pd.Series(logt[ctrl]).std(ddof=1)
    lib_sd = np.sqrt(max(raw_sd ** 2 - noise, 0.0))
    shape, _, scale = st.gamma.fit(m[m > 0], floc=0)

    labels = list(dict.fromkeys(pert[~ctrl]))
    Xn = pd.DataFrame(X / s[:, None])
    grp = Xn[~ctrl].groupby(pert[~ctrl], sort=False)
    pmeans = grp.mean().loc[labels].to_numpy()
    n_cells = grp.size().loc[labels].to_numpy().astype(float)
    pvar = grp.var(ddof=1).loc[labels].fillna(0.0).to_numpy()
    genes = [f"gene{j}" for j in range(X.shape[1])]
    use = (m >= min_mean) & ~np.isin(genes, sorted(set(target) - {""}))
    ci = np.flatnonzero(ctrl)
    d = []
    for hc, hp in ((ci[0::2], slice(0, None, 2)), (ci[1::2], slice(1, None, 2))):
        with np.errstate(divide="ignore"):
            d.append(np.log2(pmeans[hp].mean(axis=0)) - np.log2(Xn.iloc[hc].mean(axis=0).to_numpy()))
    ok = use & np.isfinite(d[0]) & np.isfinite(d[1])
    cov = np.cov(d[0][ok], d[1][ok])[0, 1]
    shared = np.where(ok, (d[0] + d[1]) / 2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log2(pmeans / m)
    lr[~np.isfinite(lr)] = np.nan
    shift = np.zeros(X.shape[1])
    for j in range(X.shape[1]):
        if use[j] and np.isfinite(lr[:, j]).any():
            shift[j] = np.nanmedian(lr[:, j])
    se = np.sqrt(pvar / n_cells[:, None] + v * 4.0 ** shift / ctrl.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (pmeans - m * 2.0 ** shift) / se
    first_target = {lab: target[np.flatnonzero(pert == lab)[0]] for lab in labels}
    pvals = []
    for i, lab in enumerate(labels):
        for j in range(X.shape[1]):
            if use[j] and genes[j] != first_target[lab] and np.isfinite(z[i, j]):
                pvals.append(2 * st.norm.sf(abs(z[i, j])))
    pi0 = min(1.0, np.mean(np.asarray(pvals) > 0.5) / 0.5)
    cpp = n_cells.mean()
    ccd = max((np.var(n_cells, ddof=1) - cpp) / cpp ** 2, 0.0)
    return dict(m=m, v=v, gene_disp=gene_disp, gm=gm, raw_sd=raw_sd, lib_sd=lib_sd, shape=shape, scale=scale,
                cov=cov, B=np.sqrt(max(cov, 0.0)) / systematic_sd, shared=shared, pi0=pi0, cpp=cpp, ccd=ccd,
                n_ctrl=int(ctrl.sum()), P=len(labels), min_cells=int(n_cells.min()), n_use=int(use.sum()))


@pytest.mark.parametrize("seed,min_mean,systematic_sd", [(4, 0.5, 0.5), (8, 0.2, 0.8)])
def test_fit_screen_equals_the_documented_estimators(seed, min_mean, systematic_sd):
    a = sp.sim.screen(n_genes=70, n_perturbations=9, n_control_cells=61, cells_per_perturbation=14,
                      n_replicates=2, p_effect=0.3, effect_size=1.0, systematic_strength=0.7, library_sd=0.4,
                      mean_shape=0.8, mean_scale=3.0, rng=seed)
    a = a[np.random.default_rng(seed).permutation(a.n_obs)].copy()
    a.obs["perturbation"] = a.obs["perturbation"].astype(str).replace({"control": "NT"})
    a.obs["target"] = np.where(a.obs["perturbation"] == "NT", "", a.obs["target"].astype(str))
    a.var_names = [f"gene{j}" for j in range(a.n_vars)]  # targets no longer match gene names ...
    genes_of = dict(zip([f"g{j:05d}" for j in range(70)], a.var_names))
    a.obs["target"] = a.obs["target"].map(lambda t: genes_of.get(t, t))  # ... until mapped again
    a.uns = {}
    X = a.X.toarray().astype(float)
    X[np.flatnonzero(a.obs["perturbation"] != "NT")[2]] = 0.0  # an empty perturbed cell: size factor 1
    a.X = X.copy()
    pert = a.obs["perturbation"].to_numpy(str)
    target = a.obs["target"].to_numpy(str)
    fit = sp.sim.fit_screen(a, control="NT", min_mean=min_mean, systematic_sd=systematic_sd)
    a0, a1 = fit.dispersion_trend
    r = _reference(X, pert, "NT", target, min_mean, systematic_sd, a0, a1)
    tol = dict(rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(fit.gene_means.to_numpy(), r["m"], rtol=1e-10, atol=1e-13)
    assert list(fit.gene_means.index) == list(a.var_names)
    np.testing.assert_allclose(fit.gene_dispersion.to_numpy(), r["gene_disp"], rtol=1e-8, atol=1e-10)
    assert fit.library_log_mean == pytest.approx(r["gm"], **tol)
    assert fit.library_log_sd_total == pytest.approx(r["raw_sd"], **tol)
    assert fit.library_sd == pytest.approx(r["lib_sd"], **tol)
    assert fit.systematic_cov == pytest.approx(r["cov"], rel=1e-8, abs=1e-12)
    assert fit.systematic_strength == pytest.approx(r["B"], rel=1e-8)
    np.testing.assert_allclose(fit.shared_log2fc.to_numpy(), r["shared"], rtol=1e-9, atol=1e-12)
    assert fit.pi0 == pytest.approx(r["pi0"], abs=1e-12)
    assert fit.p_effect == pytest.approx(1 - r["pi0"], abs=1e-12)
    assert fit.n_genes_used["systematic"] == r["n_use"] == fit.n_genes_used["p_effect"]
    p = fit.params
    assert (p.n_genes, p.n_perturbations, p.n_control_cells, p.n_replicates, p.min_cells) == \
        (70, r["P"], r["n_ctrl"], 2, r["min_cells"])
    assert p.cells_per_perturbation == pytest.approx(r["cpp"], **tol)
    assert p.cell_count_dispersion == pytest.approx(r["ccd"], rel=1e-9, abs=1e-12)
    assert (p.mean_shape, p.mean_scale) == pytest.approx((r["shape"], r["scale"]), rel=1e-6)
    np.testing.assert_allclose(p.gene_means, np.maximum(r["m"], 1e-3), rtol=1e-10)
    assert (p.dispersion_a0, p.dispersion_a1) == (a0, a1)
    assert p.library_loc == 0.0 and p.library_sd == pytest.approx(r["lib_sd"], **tol)
    assert p.systematic_strength == pytest.approx(r["B"], rel=1e-8) and p.systematic_sd == systematic_sd
    assert p.p_effect == pytest.approx(1 - r["pi0"], abs=1e-12) and p.control_label == "NT"
    assert 0 < r["pi0"] < 1 and r["cov"] > 0  # the branches that matter were reached
    # a gene whose mean is exactly min_mean is expressed (m >= min_mean)
    j = int(np.argsort(np.abs(r["m"] - 1.0))[0])
    at = sp.sim.fit_screen(a, control="NT", min_mean=float(fit.gene_means.iloc[j]), systematic_sd=systematic_sd)
    above = sp.sim.fit_screen(a, control="NT", min_mean=float(np.nextafter(fit.gene_means.iloc[j], 2.0)),
                              systematic_sd=systematic_sd)
    assert at.n_genes_used["systematic"] == above.n_genes_used["systematic"] + 1


def _small(P, n_ctrl, seed=3):
    a = sp.sim.screen(n_genes=40, n_perturbations=P, n_control_cells=n_ctrl, cells_per_perturbation=9,
                      p_effect=0.3, systematic_strength=0.8, rng=seed)
    return a


def test_two_perturbations_are_enough_for_the_shared_shift_and_the_sparsity():
    a = _small(2, 30)
    fit = sp.sim.fit_screen(a)
    X = a.X.toarray().astype(float)
    pert = a.obs["perturbation"].to_numpy(str)
    a.var_names = [f"gene{j}" for j in range(a.n_vars)]
    target = np.array([f"gene{int(t[1:])}" if t else "" for t in a.obs["target"].astype(str)])
    r = _reference(X, pert, "control", target, 0.5, 0.5, *fit.dispersion_trend)
    assert fit.systematic_cov == pytest.approx(r["cov"], rel=1e-8) and fit.systematic_cov != 0.0
    assert fit.pi0 == pytest.approx(r["pi0"], abs=1e-12)


def test_one_perturbation_or_none_fit_no_shared_shift_and_no_effects():
    for P in (0, 1):
        fit = sp.sim.fit_screen(_small(P, 30))
        assert (fit.systematic_strength, fit.systematic_cov, fit.p_effect, fit.pi0) == (0.0, 0.0, 0.0, 1.0)
        assert fit.n_genes_used["p_effect"] == 0
        assert (fit.shared_log2fc == 0).all()
        assert fit.params.cell_count_dispersion == 0.0
    # without perturbations the cell counts take ScreenParams' defaults
    d = sp.sim.ScreenParams()
    p0 = sp.sim.fit_screen(_small(0, 30)).params
    assert (p0.n_perturbations, p0.cells_per_perturbation, p0.min_cells) == (0, d.cells_per_perturbation, d.min_cells)


def test_three_control_cells_are_the_fewest():
    a = _small(2, 3)
    fit = sp.sim.fit_screen(a)
    assert fit.params.n_control_cells == 3
    keep = np.flatnonzero(a.obs["perturbation"] != "control").tolist() + \
        np.flatnonzero(a.obs["perturbation"] == "control")[:2].tolist()
    with pytest.raises(ValueError, match="at least 3 control cells"):
        sp.sim.fit_screen(a[keep].copy())


def test_a_control_cell_without_counts_is_refused_by_name():
    a = _small(2, 10)
    X = a.X.toarray()
    X[np.flatnonzero(a.obs["perturbation"] == "control")[4]] = 0
    a.X = X
    with pytest.raises(ValueError, match="parameter 'adata'.*control cells with positive total counts"):
        sp.sim.fit_screen(a)


def test_a_control_cell_with_a_single_count_is_kept():
    a = _small(2, 10)
    X = a.X.toarray()
    c = np.flatnonzero(a.obs["perturbation"] == "control")[4]
    X[c] = 0
    X[c, 7] = 1
    a.X = X
    fit = sp.sim.fit_screen(a)
    assert fit.params.n_control_cells == 10 and np.isfinite(fit.library_sd)


@pytest.mark.parametrize("n_deep,want_cov", [(2, False), (3, True)])
def test_the_shared_shift_needs_three_usable_genes(n_deep, want_cov):
    """Genes enter the shared-shift covariance when expressed (mean >= min_mean) and not
    targeted; a covariance needs three of them (two points always lie on a line)."""
    G = 8
    means = [0.001] * G
    for j in range(2, 2 + n_deep):
        means[j] = 30.0
    a = sp.sim.screen(n_genes=G, n_perturbations=2, n_control_cells=40, cells_per_perturbation=30,
                      gene_means=means, systematic_strength=1.0, dispersion_a0=0.01, dispersion_a1=0.0,
                      rng=5)
    fit = sp.sim.fit_screen(a, min_mean=1.0)
    assert fit.n_genes_used["systematic"] == n_deep
    assert (fit.systematic_cov != 0.0) == want_cov
