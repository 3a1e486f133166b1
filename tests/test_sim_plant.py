"""sim.plant: known effects planted into control cells by binomial thinning.

The planted ratio must equal 2^log2FC (within Monte Carlo error), genes without an effect
must keep their distribution and their correlations, inputs shaped like a user's must give
the same screen, bad inputs must be refused by name, and calibrate must run on the result.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sparse
import scipy.stats as st

import simpert as sp
from simpert import sim


def _nb_controls(n=6000, G=60, seed=0):
    """Independent negative binomial control cells (means 2-30, log-normal libraries)."""
    g = np.random.default_rng(seed)
    mu = np.exp(g.uniform(np.log(2.0), np.log(30.0), G))
    lib = np.exp(0.3 * g.standard_normal(n))
    lam = lib[:, None] * mu[None, :] * g.gamma(5.0, 0.2, (n, G))
    X = g.poisson(lam)
    return ad.AnnData(X=sparse.csr_matrix(X.astype(np.int64)),
                      obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]),
                      var=pd.DataFrame(index=[f"G{j}" for j in range(G)]))


def _correlated_controls(n=4000, G=40, n_loaded=20, seed=1):
    """Control cells whose first ``n_loaded`` genes share a latent factor (log-normal, sd 0.5)."""
    g = np.random.default_rng(seed)
    mu = np.exp(g.uniform(np.log(5.0), np.log(40.0), G))
    load = np.zeros(G)
    load[:n_loaded] = g.choice([-1.0, 1.0], n_loaded) * 0.5
    f = g.standard_normal(n)
    lib = np.exp(0.2 * g.standard_normal(n))
    lam = lib[:, None] * mu[None, :] * np.exp(np.outer(f, load) - load ** 2 / 2) * g.gamma(10.0, 0.1, (n, G))
    X = g.poisson(lam)
    return ad.AnnData(X=sparse.csr_matrix(X), obs=pd.DataFrame(index=[f"cell_{i}" for i in range(n)]),
                      var=pd.DataFrame(index=[f"GENE{j}" for j in range(G)]))


def _normalised_means(a, labels):
    X = a.X.toarray().astype(float) / a.obs["size_factor"].to_numpy()[:, None]
    pert = a.obs["perturbation"].astype(str).to_numpy()
    out = {}
    for lab in labels:
        rows = X[pert == lab]
        out[lab] = (rows.mean(axis=0), rows.var(axis=0, ddof=1), rows.shape[0])
    return out


# ---------------------------------------------------------------- (a) planted ratio = 2^lfc


@pytest.mark.parametrize("p_effect, effect_size, strength", [
    (0.2, 0.5, 0.0),   # sparse, small
    (0.2, 1.5, 0.0),   # sparse, large
    (1.0, 0.7, 0.0),   # dense
    (0.2, 1.0, 1.0),   # sparse with a shared systematic response
])
def test_normalised_mean_ratio_is_two_to_the_planted_log2fc(p_effect, effect_size, strength):
    ctrl = _nb_controls()
    a = sim.plant(ctrl, n_perturbations=4, cells_per_perturbation=700, n_control_cells=1500,
                  cell_count_dispersion=0.0, p_effect=p_effect, effect_size=effect_size,
                  systematic_strength=strength, rng=3)
    tr = sim.truth(a)
    lfc = tr.log2fc.to_numpy()
    assert (lfc > 0.3).any() and (lfc < -0.3).any()  # effects up and down
    m = _normalised_means(a, [tr.control] + list(tr.perturbations))
    m0, v0, n0 = m[tr.control]
    z, err = [], []
    for i, p in enumerate(tr.perturbations):
        mp, vp, n_p = m[p]
        ok = (m0 * n0 > 200) & (mp * n_p > 200)  # enough counts for the delta method
        est = np.log(mp[ok] / m0[ok])
        se = np.sqrt(vp[ok] / (n_p * mp[ok] ** 2) + v0[ok] / (n0 * m0[ok] ** 2))
        truth_ln = lfc[i, ok] * np.log(2.0)
        z.append((est - truth_ln) / se)
        err.append(np.abs(est - truth_ln) / np.log(2.0))
    z = np.concatenate(z)
    assert z.size > 150
    # unbiased and with the spread of the Monte Carlo error, nothing beyond it
    assert abs(z.mean()) < 4.0 / np.sqrt(z.size) + 0.1, z.mean()
    assert 0.75 < z.std() < 1.3, z.std()
    assert np.max(np.abs(z)) < 5.0
    # the recorded library consequence: mean library ratio (normalised by the source size factor)
    lib = a.obs["library"].to_numpy() / a.obs["size_factor"].to_numpy()
    pert = a.obs["perturbation"].astype(str).to_numpy()
    for i, p in enumerate(tr.perturbations):
        ratio = lib[pert == p].mean() / lib[pert == tr.control].mean()
        expected = 2.0 ** np.asarray(a.uns["simpert"]["truth"]["library_log2fc"])[i]
        assert ratio == pytest.approx(expected, rel=0.06)


def test_target_knockdown_follows_the_guides_and_escapers():
    ctrl = _nb_controls(G=40, seed=4)
    a = sim.plant(ctrl, n_perturbations=3, cells_per_perturbation=800, n_control_cells=2000,
                  cell_count_dispersion=0.0, p_effect=0.0, escape_rate=0.3, rng=5)
    tr = sim.truth(a)
    m = _normalised_means(a, [tr.control] + list(tr.perturbations))
    for p, t in tr.targets.items():
        lfc = tr.log2fc.loc[p, t]
        assert lfc < -0.5  # knockdown of 60% efficiency guides, 30% escapers
        j = list(tr.genes).index(t)
        ratio = m[p][0][j] / m[tr.control][0][j]
        assert np.log2(ratio) == pytest.approx(lfc, abs=0.12)
        esc = a.obs.loc[a.obs["perturbation"].astype(str) == p, "escaped"].mean()
        assert esc == pytest.approx(0.3, abs=0.06)


def test_thinning_is_binomial_poisson_cells_stay_poisson():
    # Binomial thinning of Poisson(mu) gives Poisson(mu q): variance = mean in every group
    # (a rounded multiplication would give variance q^2 mu, below the mean)
    g = np.random.default_rng(22)
    mu = np.exp(g.uniform(np.log(5.0), np.log(40.0), 30))
    X = g.poisson(np.broadcast_to(mu, (4000, 30)))
    ctrl = ad.AnnData(X=sparse.csr_matrix(X))
    a = sim.plant(ctrl, n_perturbations=3, cells_per_perturbation=800, n_control_cells=1000,
                  cell_count_dispersion=0.0, escape_rate=0.0, p_effect=0.5, effect_size=1.5, rng=23)
    tr = sim.truth(a)
    Y = a.X.toarray().astype(float)
    pert = a.obs["perturbation"].astype(str).to_numpy()
    ratios = []
    for p in tr.perturbations:
        rows = Y[pert == p]
        down = (tr.specific.loc[p].to_numpy() < -0.5) & (tr.genes != tr.targets[p])
        ratios.append(rows[:, down].var(axis=0, ddof=1) / rows[:, down].mean(axis=0))
    ratios = np.concatenate(ratios)
    assert ratios.size >= 10
    assert np.all(np.abs(ratios - 1.0) < 0.2), ratios


# ---------------------------------------------------------------- (b) unperturbed genes unchanged


def test_unperturbed_genes_keep_their_distribution():
    ctrl = _nb_controls(n=5000, G=60, seed=6)
    a = sim.plant(ctrl, n_perturbations=4, cells_per_perturbation=500, n_control_cells=2000,
                  cell_count_dispersion=0.0, p_effect=0.1, effect_size=1.5, rng=7)
    tr = sim.truth(a)
    X = a.X.toarray()
    pert = a.obs["perturbation"].astype(str).to_numpy()
    c = X[pert == tr.control]
    pvals, planted_p = [], []
    for p in tr.perturbations:
        cells = X[pert == p]
        spec = tr.specific.loc[p].to_numpy()
        for j in range(X.shape[1]):
            (pvals if spec[j] == 0 else planted_p).append(st.ks_2samp(cells[:, j], c[:, j]).pvalue)
    pvals = np.asarray(pvals)
    assert pvals.size > 150
    assert pvals.min() > 0.01 / pvals.size  # Bonferroni at 1%
    assert np.mean(pvals < 0.05) < 0.10  # KS on counts is conservative: well below 5% + noise
    # the test can see a planted effect
    assert np.median(planted_p) < 1e-6
    # genes that no perturbation changes are not thinned at all: the source counts, exactly
    untouched = (np.asarray(a.uns["simpert"]["truth"]["max_log2fc"]) == 0) & (tr.specific == 0).all(axis=0).to_numpy()
    assert untouched.sum() > 5
    src = ctrl[a.obs["source_cell"].to_numpy()].X.toarray()
    np.testing.assert_array_equal(X[:, untouched], src[:, untouched])


# ---------------------------------------------------------------- (c) gene-gene correlation kept


def _offdiag_corr(X, genes):
    L = np.log1p(X[:, genes])
    C = np.corrcoef(L, rowvar=False)
    return C[np.triu_indices(len(genes), 1)]


def test_real_gene_gene_correlation_is_preserved():
    ctrl = _correlated_controls()
    a = sim.plant(ctrl, n_perturbations=6, cells_per_perturbation=300, n_control_cells=1500,
                  p_effect=0.05, effect_size=1.0, rng=8)
    tr = sim.truth(a)
    X = a.X.toarray().astype(float)
    pert = a.obs["perturbation"].astype(str).to_numpy()
    held = X[pert == tr.control]
    planted, held_out = [], []
    for p in tr.perturbations:  # within each perturbation, the loaded genes it leaves alone
        genes = [j for j in range(20) if tr.specific.loc[p].iloc[j] == 0]
        planted.append(_offdiag_corr(X[pert == p], genes))
        held_out.append(_offdiag_corr(held, genes))
    planted, held_out = np.concatenate(planted), np.concatenate(held_out)
    src = _offdiag_corr(ctrl.X.toarray().astype(float), list(range(20)))
    assert np.mean(np.abs(src)) > 0.3  # the controls are correlated
    assert np.corrcoef(planted, held_out)[0, 1] > 0.95  # the same structure, pair by pair
    # the same level (up to which cells share the latent factor's draws: about +-0.03)
    assert np.mean(np.abs(planted)) == pytest.approx(np.mean(np.abs(held_out)), abs=0.07)
    assert np.mean(np.abs(planted)) == pytest.approx(np.mean(np.abs(src)), abs=0.07)
    # a simulation fitted to the same cells has no such correlation
    fitted = sim.screen(sim.estimate_params(a), rng=9)
    free = _offdiag_corr(fitted.X.toarray().astype(float), list(range(20)))
    assert np.mean(np.abs(free)) < 0.5 * np.mean(np.abs(planted))


# ---------------------------------------------------------------- (d) inputs shaped like a user's


def test_user_shaped_inputs_give_the_same_screen():
    base = _nb_controls(n=1200, G=30, seed=10)
    counts = base.X.toarray()
    g = np.random.default_rng(11)
    genes = np.array([f"ENSG{j:06d}.{j % 3}" for j in range(30)])
    order = g.permutation(30)  # shuffled gene order
    barcodes = [f"{''.join(g.choice(list('ACGT'), 12))}-1" for _ in range(1200)]
    obs = pd.DataFrame({"batch": pd.Categorical(g.choice(["lane1", "lane2"], 1200)), "n_genes": 7},
                       index=barcodes)
    var = pd.DataFrame({"symbol": [f"SYM{j}" for j in order]}, index=genes[order])
    kw = dict(n_perturbations=5, cells_per_perturbation=60, n_control_cells=200, rng=12, p_effect=0.2)
    X = counts[:, order]
    variants = {
        "dense int": ad.AnnData(X=X.astype(np.int64), obs=obs, var=var),
        "sparse float32": ad.AnnData(X=sparse.csr_matrix(X.astype(np.float32)), obs=obs, var=var),
        "csc float64": ad.AnnData(X=sparse.csc_matrix(X.astype(float)), obs=obs, var=var),
    }
    layered = ad.AnnData(X=np.log1p(X.astype(np.float32)), obs=obs, var=var)
    layered.layers["raw"] = sparse.csr_matrix(X.astype(np.float32))
    outs = {k: sim.plant(v, **kw) for k, v in variants.items()}
    outs["layer"] = sim.plant(layered, layer="raw", **kw)
    ref = outs["dense int"]
    assert list(ref.var_names) == list(genes[order])
    assert set(sim.truth(ref).targets) <= set(genes)
    for k, out in outs.items():
        assert (out.X != ref.X).nnz == 0, k
        pd.testing.assert_frame_equal(out.obs, ref.obs)
    # every count comes from its own gene of its own source cell (no gene-order slip)
    src = pd.DataFrame(X, index=barcodes, columns=genes[order]).loc[ref.obs["source_cell"]].to_numpy()
    assert np.all(ref.X.toarray() <= src)
    M = np.asarray(ref.uns["simpert"]["truth"]["max_log2fc"])
    ctrl_rows = ref.obs["is_control"].to_numpy()
    np.testing.assert_array_equal(ref.X.toarray()[np.ix_(ctrl_rows, M == 0)], src[np.ix_(ctrl_rows, M == 0)])
    # the usual pipeline runs on it: truth, pseudobulk, DE
    pb = sim.pseudobulk(ref, by=("perturbation",))
    assert pb.X.sum() == ref.X.sum()


def test_survives_h5ad_and_feeds_de(tmp_path):
    a = sim.plant(_nb_controls(n=2000, G=40, seed=13), n_perturbations=4, cells_per_perturbation=80,
                  n_control_cells=300, n_replicates=2, duplicate=True, rng=14, p_effect=0.3, effect_size=1.5)
    assert sorted(a.obs["replicate"].unique()) == [0, 1]
    a.write_h5ad(tmp_path / "p.h5ad")
    b = ad.read_h5ad(tmp_path / "p.h5ad")
    pd.testing.assert_frame_equal(sim.truth(a).log2fc, sim.truth(b).log2fc)
    assert (sim.redraw(b).X != sim.redraw(a).X).nnz == 0
    pb = sim.pseudobulk(a, by=("perturbation", "replicate"))
    de = sp.de.deseq(pb, control="control", backend="native")
    t = de.table
    lfc = sim.truth(a).log2fc.stack().rename("truth").reset_index()
    lfc.columns = ["perturbation", "gene", "truth"]
    merged = t.merge(lfc, on=["perturbation", "gene"])
    big = merged[np.abs(merged["truth"]) > 1]
    assert len(big) > 5
    assert np.corrcoef(big["log2fc"], big["truth"])[0, 1] > 0.8


# ---------------------------------------------------------------- duplicate


def test_duplicate_comes_from_disjoint_cells_with_the_same_design():
    ctrl = _nb_controls(n=2000, G=30, seed=15)
    a = sim.plant(ctrl, n_perturbations=4, cells_per_perturbation=100, n_control_cells=300, duplicate=True,
                  rng=16)
    d = sim.redraw(a)
    assert d.shape == a.shape and list(d.obs_names) == list(a.obs_names)
    assert (d.obs["perturbation"] == a.obs["perturbation"]).all()
    assert (d.obs["guide"] == a.obs["guide"]).all()
    assert not set(d.obs["source_cell"]) & set(a.obs["source_cell"])
    assert (d.X != a.X).nnz > 0
    pd.testing.assert_frame_equal(sim.truth(d).log2fc, sim.truth(a).log2fc)
    assert "duplicate" not in d.layers
    with pytest.raises(ValueError, match="'adata'.*duplicate=True"):
        sim.redraw(sim.plant(ctrl, n_perturbations=2, cells_per_perturbation=50, n_control_cells=100, rng=0))


# ---------------------------------------------------------------- (e) bad inputs


def test_bad_inputs_name_the_parameter():
    good = _nb_controls(n=400, G=20, seed=17)
    kw = dict(n_perturbations=3, cells_per_perturbation=20, n_control_cells=50, rng=0)

    def with_x(X):
        return ad.AnnData(X=X, obs=good.obs, var=good.var)

    dense = good.X.toarray().astype(float)
    nan = dense.copy()
    nan[3, 4] = np.nan
    neg = dense.copy()
    neg[5, 2] = -1
    frac = dense.copy()
    frac[0, 0] = 0.5
    empty = dense.copy()
    empty[7] = 0
    cases = [
        (with_x(nan), {}, r"'controls'.*finite.*1 NaN"),
        (with_x(neg), {}, r"'controls'.*non-negative.*1 negative"),
        (with_x(frac), {}, r"'controls'.*integer.*non-integer"),
        (with_x(np.log1p(dense)), {}, r"'controls'.*integer \(raw\) counts"),
        (with_x(empty), {}, r"'controls'.*1 empty cell"),
        (good, {"n_control_cells": 380}, r"'controls'.*at least \d+ cells.*got '400 cells'"),
        (good, {"cells_per_perturbation": 200}, r"'controls'.*at least"),
        (good, {"n_perturbations": 25}, r"'n_perturbations'.*at most the number of genes of controls \(20\)"),
        (good, {"layer": "counts"}, r"'layer'.*got 'counts'"),
        (good, {"p_effect": 1.5}, r"'p_effect'"),
        (good, {"control_label": "G3"}, r"'control_label'.*not a gene name"),
        (good, {"cells_per_perturbation": 0}, r"'cells_per_perturbation'"),
    ]
    with pytest.warns(UserWarning):
        dup_names = ad.AnnData(X=good.X, obs=good.obs, var=pd.DataFrame(index=["A"] * 20))
    cases.append((dup_names, {}, r"'controls'.*unique gene names"))
    for data, extra, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            sim.plant(data, **{**kw, **extra})
    with pytest.raises(TypeError, match="'mean_shape'.*noise"):
        sim.plant(good, mean_shape=2.0, **kw)
    with pytest.raises(TypeError, match="'controls'"):
        sim.plant(dense, **kw)
    # with duplicate=True the design needs twice the cells
    with pytest.raises(ValueError, match="twice with duplicate=True"):
        sim.plant(good, **{**kw, "n_control_cells": 140}, duplicate=True)


# ---------------------------------------------------------------- (f) seeds


def test_same_seed_same_bytes():
    ctrl = _nb_controls(n=1500, G=30, seed=18)
    kw = dict(n_perturbations=5, cells_per_perturbation=60, n_control_cells=200, duplicate=True,
              p_effect=0.2, systematic_strength=0.5, escape_rate=0.2)
    a = sim.plant(ctrl, rng=19, **kw)
    b = sim.plant(ctrl, rng=19, **kw)
    c = sim.plant(ctrl, rng=20, **kw)
    for x, y in ((a.X, b.X), (a.layers["duplicate"], b.layers["duplicate"])):
        assert x.dtype == y.dtype
        for part in ("data", "indices", "indptr"):
            assert getattr(x, part).tobytes() == getattr(y, part).tobytes()
    pd.testing.assert_frame_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.uns["simpert"]["truth"]["log2fc"], b.uns["simpert"]["truth"]["log2fc"])
    assert a.X.shape != c.X.shape or (a.X != c.X).nnz > 0


# ---------------------------------------------------------------- calibrate on planted screens


def test_calibrate_runs_on_the_planted_scenario_file():
    cal = sp.calibrate.calibrate(["pearson_delta", "mse"], ["planted_sparse"], n_replicates=1, rng=0,
                                 executor="serial")
    assert cal.errors.empty, cal.errors
    m = cal.table.groupby(["metric", "predictor"])["value"].mean()
    assert m["pearson_delta", "oracle"] > m["pearson_delta", "technical_duplicate"] > m["pearson_delta", "mean"]
    assert m["mse", "oracle"] < m["mse", "mean"]
    summ = cal.summary().table
    assert set(summ.index.get_level_values("scenario")) == {"planted_sparse"}


def test_calibrate_plants_into_an_h5ad_of_control_cells(tmp_path):
    ctrl = _correlated_controls(n=1500, G=40, seed=21)
    ctrl.layers["counts"] = ctrl.X.copy()
    ctrl.X = np.log1p(ctrl.X.toarray().astype(np.float32))
    ctrl.write_h5ad(tmp_path / "my_controls.h5ad")
    (tmp_path / "mine.toml").write_text(
        '[scenario]\nname = "mine"\nkind = "planted"\n\n[params]\ncontrols = "my_controls.h5ad"\n'
        'layer = "counts"\nn_perturbations = 8\ncells_per_perturbation = 40.0\nn_control_cells = 200\n'
        'p_effect = 0.1\neffect_size = 1.5\n')
    sc = sp.calibrate.load_scenario(tmp_path / "mine.toml")
    assert sc.kind == "planted"
    controls = sp.calibrate.planted_controls(sc)
    assert controls.n_obs == 1500
    cal = sp.calibrate.calibrate(["pearson_delta"], [sc], predictors=["oracle", "technical_duplicate", "mean"],
                                 n_replicates=2, rng=1, executor="serial")
    assert cal.errors.empty, cal.errors
    assert cal.table["value"].notna().all()
    with pytest.raises(ValueError, match="'controls'"):
        sp.calibrate.planted_controls({"controls": str(tmp_path / "missing.h5ad")})


def test_gene_dispersions_are_the_documented_moment_estimate():
    # var["dispersion"] is (v - m mean(1/s)) / m^2 of the counts divided by the size factors
    # (library / its geometric mean), clipped to [1e-6, 1e3]; Poisson genes (no
    # overdispersion) fall below 0 about half the time and take the floor
    g = np.random.default_rng(8)
    lam = g.gamma(2.0, 3.0, 30)
    cells = np.hstack([g.negative_binomial(1 / 0.3, 1 / (1 + 0.3 * lam[:15]), size=(800, 15)),
                       g.poisson(lam[15:], size=(800, 15)), np.zeros((800, 1), dtype=int)])
    controls = ad.AnnData(X=sparse.csr_matrix(cells.astype(np.int64)),
                          obs=pd.DataFrame(index=[f"c{i}" for i in range(800)]),
                          var=pd.DataFrame(index=[f"g{i}" for i in range(31)]))
    x = controls.X.toarray().astype(float)
    lib = x.sum(1)
    s = lib / np.exp(np.mean(np.log(lib)))
    z = x / s[:, None]
    m, v = z.mean(0), z.var(0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.clip((v - m * np.mean(1 / s)) / m ** 2, 1e-6, 1e3)
    want[30] = 1e-6  # a gene without counts: no estimate, the floor
    a = sim.plant(controls, n_perturbations=2, cells_per_perturbation=20, n_control_cells=100, rng=0)
    got = a.var["dispersion"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert (got[15:30] == 1e-6).sum() >= 3 and np.all(got[:15] > 0.1)


def test_a_target_at_gene_zero_is_knocked_down_like_any_other():
    """Every gene targeted (six perturbations of six genes): the first gene's knockdown is
    in the truth and in the counts, as for the others."""
    ctrl = _nb_controls(n=5000, G=6, seed=6)
    a = sim.plant(ctrl, n_perturbations=6, cells_per_perturbation=500, n_control_cells=1500,
                  cell_count_dispersion=0.0, p_effect=0.0, escape_rate=0.0, rng=7)
    tr = sim.truth(a)
    genes = list(tr.genes)
    assert sorted(genes.index(t) for _, t in tr.targets.items()) == list(range(6))
    m = _normalised_means(a, [tr.control] + list(tr.perturbations))
    for p, t in tr.targets.items():
        j = genes.index(t)
        lfc = tr.log2fc.loc[p, t]
        assert lfc < -0.5, (p, t)
        assert np.log2(m[p][0][j] / m[tr.control][0][j]) == pytest.approx(lfc, abs=0.15), (p, t)
