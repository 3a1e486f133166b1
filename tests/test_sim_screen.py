"""The count-level screen: schema, reproducibility, nuisance invariance, distributions."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sps

import simpert.sim as sim
from simpert.sim._engine import draw_counts, model_from_uns
from simpert.sim._pseudobulk import design_from_obs

SMALL = dict(n_genes=120, n_perturbations=6, n_control_cells=80, cells_per_perturbation=40)


@pytest.fixture(scope="module")
def small():
    return sim.screen(rng=1, n_replicates=2, systematic_strength=0.5, **SMALL)


def test_schema(small):
    a = small
    assert sps.isspmatrix_csr(a.X) or isinstance(a.X, sps.csr_array)
    assert a.X.dtype in (np.int32, np.int64)
    obs = a.obs
    for col in ("perturbation", "is_control", "target", "guide", "replicate", "size_factor", "knockdown", "escaped"):
        assert col in obs
    assert isinstance(obs["perturbation"].dtype, pd.CategoricalDtype)
    assert isinstance(obs["guide"].dtype, pd.CategoricalDtype)
    rec = a.uns["simpert"]
    assert obs["perturbation"].cat.categories[0] == rec["control"] == "control"
    assert obs.loc[obs.is_control, "target"].eq("").all()
    assert (obs.loc[obs.is_control, "guide"] == "control").all()
    assert (obs.loc[~obs.is_control, "target"] == obs.loc[~obs.is_control, "perturbation"].astype(str)).all()
    assert obs.loc[obs.is_control | obs.escaped, "knockdown"].eq(0).all()
    assert list(a.var.columns) == ["base_mean", "dispersion", "is_regulator"]
    assert a.var_names[0] == "g00000"
    assert rec["kind"] == "screen"
    for key in ("version", "seed", "params", "truth"):
        assert key in rec
    tr = rec["truth"]
    P, G = SMALL["n_perturbations"], SMALL["n_genes"]
    assert tr["log2fc"].shape == (P, G) and tr["specific_log2fc"].shape == (P, G)
    assert tr["shared_log2fc"].shape == (G,)
    assert list(tr["perturbations"]) == list(obs["perturbation"].cat.categories[1:])
    assert a.var["is_regulator"].sum() == P
    assert set(obs.replicate) == {0, 1}


def test_h5ad_roundtrip(small, tmp_path):
    path = tmp_path / "s.h5ad"
    small.write_h5ad(path)
    back = ad.read_h5ad(path)
    t0, t1 = sim.truth(small), sim.truth(back)
    pd.testing.assert_frame_equal(t0.log2fc, t1.log2fc)
    pd.testing.assert_frame_equal(t0.specific, t1.specific)
    pd.testing.assert_series_equal(t0.shared, t1.shared)
    pd.testing.assert_series_equal(t0.targets, t1.targets)
    assert t1.params["n_genes"] == SMALL["n_genes"]
    assert (back.X != small.X).nnz == 0
    # the truth and redraw still work after the round trip; same seed -> same duplicate
    r0, r1 = sim.redraw(small, rng=5), sim.redraw(back, rng=5)
    assert (r0.X != r1.X).nnz == 0
    pb = sim.pseudobulk(small)
    pb.write_h5ad(tmp_path / "pb.h5ad")
    pb_back = ad.read_h5ad(tmp_path / "pb.h5ad")
    np.testing.assert_array_equal(sim.redraw(pb, rng=2).X, sim.redraw(pb_back, rng=2).X)
    np.testing.assert_allclose(sim.expected_counts(pb), sim.expected_counts(pb_back))


def test_same_seed_same_counts():
    a = sim.screen(rng=7, **SMALL)
    b = sim.screen(rng=np.random.SeedSequence(7), **SMALL)
    c = sim.screen(rng=8, **SMALL)
    assert (a.X != b.X).nnz == 0
    pd.testing.assert_frame_equal(a.obs, b.obs)
    assert a.shape != c.shape or (a.X != c.X).nnz > 0


def test_params_object_and_overrides():
    p = sim.ScreenParams(**SMALL)
    a = sim.screen(p, rng=3, escape_rate=0.0)
    b = sim.screen(p.replace(escape_rate=0.0), rng=3)
    assert (a.X != b.X).nnz == 0
    assert sim.ScreenParams.from_dict(a.uns["simpert"]["params"]) == p.replace(escape_rate=0.0)


def _control_block(a):
    return a.X[np.flatnonzero(a.obs.is_control.to_numpy())]


@pytest.mark.parametrize("field,on,off", [
    ("systematic_strength", 1.0, 0.0),
    ("escape_rate", 0.3, 0.0),
    ("cell_count_dispersion", 0.5, 0.0),
])
def test_nuisance_off_keeps_other_draws(field, on, off):
    a = sim.screen(rng=11, **{field: on}, **SMALL)
    b = sim.screen(rng=11, **{field: off}, **SMALL)
    # controls are untouched by every nuisance: identical counts and size factors
    assert (_control_block(a) != _control_block(b)).nnz == 0
    ta, tb = sim.truth(a), sim.truth(b)
    base = ta.specific.copy()
    for t in (ta, tb):
        for p, g in t.targets.items():
            t.specific.loc[p, g] = 0.0
    pd.testing.assert_frame_equal(ta.specific, tb.specific)
    np.testing.assert_array_equal(a.var.base_mean, b.var.base_mean)
    np.testing.assert_array_equal(a.var.dispersion, b.var.dispersion)
    del base
    # per perturbation: the first min(n_a, n_b) cells keep their guides and size factors,
    # and for a cell-count change also their counts
    for p in ta.perturbations:
        ia = np.flatnonzero(a.obs.perturbation.to_numpy() == p)
        ib = np.flatnonzero(b.obs.perturbation.to_numpy() == p)
        k = min(ia.size, ib.size)
        np.testing.assert_array_equal(a.obs.guide.to_numpy()[ia[:k]], b.obs.guide.to_numpy()[ib[:k]])
        np.testing.assert_array_equal(a.obs.size_factor.to_numpy()[ia[:k]], b.obs.size_factor.to_numpy()[ib[:k]])
        if field == "cell_count_dispersion":
            assert (a.X[ia[:k]] != b.X[ib[:k]]).nnz == 0
    if field == "systematic_strength":
        assert not np.allclose(ta.shared, 0) and np.allclose(tb.shared, 0)
        np.testing.assert_allclose(ta.shared / on, a.uns["simpert"]["truth"]["systematic_direction"])
        np.testing.assert_array_equal(a.obs.escaped, b.obs.escaped)
        np.testing.assert_array_equal(a.obs.knockdown, b.obs.knockdown)


def test_chunking_does_not_change_counts(small):
    model = model_from_uns(small)
    design = design_from_obs(small.obs, small.uns["simpert"])
    ss = np.random.SeedSequence(99)
    x1, _ = draw_counts(model, design, ss, chunk_elems=50)
    x2, _ = draw_counts(model, design, ss, chunk_elems=10**7)
    assert (x1 != x2).nnz == 0
    # pseudobulk drawn directly equals the pseudobulk of the cells
    sample = np.asarray(sim.pseudobulk(small).uns["simpert"]["design"]["sample"])
    pb, _ = draw_counts(model, design, ss, sample=sample, n_samples=int(sample.max()) + 1, chunk_elems=333)
    np.testing.assert_array_equal(pb, sim.pseudobulk(ad.AnnData(x1, obs=small.obs, var=small.var,
                                                                 uns=dict(small.uns))).X)


def test_pseudobulk_output_matches_pseudobulk_of_cells():
    cells = sim.screen(rng=4, n_replicates=3, **SMALL)
    pb = sim.screen(rng=4, n_replicates=3, output="pseudobulk", **SMALL)
    pb2 = sim.pseudobulk(cells)
    assert isinstance(pb.X, np.ndarray) and pb.X.dtype == np.int64
    np.testing.assert_array_equal(pb.X, pb2.X)
    pd.testing.assert_frame_equal(pb.obs, pb2.obs)
    assert pb.obs["n_cells"].sum() == cells.n_obs
    for col in ("perturbation", "is_control", "target", "replicate", "n_cells"):
        assert col in pb.obs
    # by guide
    pg = sim.pseudobulk(cells, by=("perturbation", "guide"))
    assert "guide" in pg.obs and pg.obs["n_cells"].sum() == cells.n_obs
    np.testing.assert_array_equal(pg.X.sum(axis=0), np.asarray(cells.X.sum(axis=0)).ravel())
    with pytest.raises(ValueError, match="parameter 'by'"):
        sim.pseudobulk(cells, by=("nope",))


def test_redraw_is_a_technical_duplicate(small):
    r = sim.redraw(small, rng=2)
    for col in ("perturbation", "guide", "replicate", "is_control", "target"):
        pd.testing.assert_series_equal(r.obs[col], small.obs[col])
    pd.testing.assert_frame_equal(r.var, small.var)
    pd.testing.assert_frame_equal(sim.truth(r).log2fc, sim.truth(small).log2fc)
    assert (r.X != small.X).nnz > 0
    assert not np.array_equal(r.obs.size_factor, small.obs.size_factor)
    pb = sim.pseudobulk(small)
    rp = sim.redraw(pb, rng=2)
    pd.testing.assert_frame_equal(rp.obs, pb.obs)
    assert not np.array_equal(rp.X, pb.X)
    # redraw of pseudobulk = pseudobulk of the redrawn cells (same noise streams)
    np.testing.assert_array_equal(rp.X, sim.pseudobulk(r).X)


def test_nb_moments_match_parameters():
    """Control cells at size factor 1: sample mean and variance per gene vs mu and mu + a mu^2."""
    n = 20000
    a = sim.screen(rng=21, n_genes=40, n_perturbations=0, n_control_cells=n, library_sd=0.0,
                   mean_shape=2.0, mean_scale=3.0, dispersion_a0=0.2, dispersion_a1=0.5)
    x = a.X.toarray().astype(float)
    mu = a.var.base_mean.to_numpy()
    alpha = a.var.dispersion.to_numpy()
    np.testing.assert_allclose(alpha, 0.2 + 0.5 / mu)
    mean = x.mean(0)
    var = x.var(0, ddof=1)
    z_mean = (mean - mu) / np.sqrt(var / n)
    dev2 = (x - mean) ** 2
    z_var = (var - (mu + alpha * mu**2)) / np.sqrt(dev2.var(0) / n)
    assert np.max(np.abs(z_mean)) < 4.5, z_mean
    assert np.max(np.abs(z_var)) < 4.5, z_var
    # expected_counts is the simulator's mean
    np.testing.assert_allclose(sim.expected_counts(a)[0], mu)


def test_library_sizes_lognormal():
    a = sim.screen(rng=5, n_genes=50, n_perturbations=0, n_control_cells=20000, library_loc=0.3, library_sd=0.25)
    ls = np.log(a.obs.size_factor.to_numpy())
    n = ls.size
    assert abs(ls.mean() - 0.3) < 4 * 0.25 / np.sqrt(n)
    assert abs(ls.std(ddof=1) - 0.25) < 4 * 0.25 / np.sqrt(2 * n)


@pytest.mark.parametrize("modality", ["crispri", "ko", "crispra"])
def test_realised_knockdown_and_escapers(modality):
    p = dict(n_genes=60, n_perturbations=30, n_control_cells=50, cells_per_perturbation=400, n_guides=3,
             cell_count_dispersion=0.0, escape_rate=0.2, p_effect=0.0, library_sd=0.1,
             modality=modality, mean_shape=50.0, mean_scale=0.4)
    a = sim.screen(rng=31, **p)
    obs = a.obs
    pert = ~obs.is_control.to_numpy()
    # escaper fraction within binomial error
    esc = obs.escaped.to_numpy()[pert]
    assert abs(esc.mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / esc.size)
    # per-cell knockdown is the guide efficiency (CRISPRi, CRISPRa) or edited/unedited (KO)
    tr = a.uns["simpert"]["truth"]
    eff = dict(zip(tr["guides"], tr["guide_efficiency"]))
    k_guide = obs.guide.astype(str).map(eff).to_numpy()[pert]
    kd = obs.knockdown.to_numpy()[pert]
    live = ~esc
    if modality == "ko":
        edited = kd[live] > 0
        np.testing.assert_allclose(kd[live][edited], 1 - 0.1)
        assert abs(edited.mean() - k_guide[live].mean()) < 4 * np.sqrt(0.25 / live.sum())
    else:
        np.testing.assert_allclose(kd[live], k_guide[live])
    # guide efficiencies follow Beta(6, 3)
    g = np.asarray(tr["guide_efficiency"])
    assert abs(g.mean() - 6 / 9) < 4 * np.sqrt(6 * 3 / (81 * 10)) / np.sqrt(g.size)
    # realised target counts: sum over non-escaped cells vs the expected knockdown
    x = a.X.toarray()
    ti = np.asarray(tr["target_index"])
    rows = np.flatnonzero(pert)
    tcol = ti[a.obs.perturbation.cat.codes.to_numpy()[rows] - 1]
    y = x[rows, tcol].astype(float)
    base = a.var.base_mean.to_numpy()[tcol] * obs.size_factor.to_numpy()[rows]
    if modality == "crispra":
        factor = 1 + kd * 3.0
    else:
        factor = 1 - kd
    expect = base * factor
    alpha = a.var.dispersion.to_numpy()[tcol]
    se = np.sqrt(np.sum(expect + alpha * expect**2))
    assert abs(y.sum() - expect.sum()) < 4 * se
    # truth log2fc of the target: expected over guides and escapers, checked by Monte Carlo
    mean_ctrl = a.var.base_mean.to_numpy() * np.exp(0.1**2 / 2)
    for j in range(0, 30, 6):
        cells = np.flatnonzero(a.obs.perturbation.cat.codes.to_numpy() == j + 1)
        obs_ratio = x[cells, ti[j]].mean() / mean_ctrl[ti[j]]
        true_ratio = 2 ** tr["log2fc"][j, ti[j]]
        assert abs(obs_ratio - true_ratio) < 0.15 * max(true_ratio, 0.3)


def test_systematic_shift_and_effect_sparsity():
    p = dict(n_genes=400, n_perturbations=40, n_control_cells=4000, cells_per_perturbation=100,
             cell_count_dispersion=0.0, escape_rate=0.0, p_effect=0.1, effect_size=0.8, effect_sd=0.4,
             systematic_strength=1.0, systematic_sd=0.5, mean_shape=4.0, mean_scale=5.0, library_sd=0.0)
    a = sim.screen(rng=41, **p)
    t = sim.truth(a)
    spec = t.specific.to_numpy().copy()
    ti = np.asarray(a.uns["simpert"]["truth"]["target_index"])
    mask = np.ones_like(spec, dtype=bool)
    mask[np.arange(spec.shape[0]), ti] = False
    nz = spec[mask] != 0
    assert abs(nz.mean() - 0.1) < 4 * np.sqrt(0.09 / nz.size)
    mags = np.abs(spec[mask][nz])
    assert abs(np.median(mags) - 0.8) < 0.08
    assert abs(np.log(mags).std() - 0.4) < 0.04
    d = np.asarray(a.uns["simpert"]["truth"]["systematic_direction"])
    assert abs(d.std() - 0.5) < 4 * 0.5 / np.sqrt(2 * d.size)
    # realised shift: log2 of the mean of perturbed cells over the mean of controls
    x = a.X.toarray().astype(float)
    ctrl = x[a.obs.is_control.to_numpy()].mean(0)
    codes = a.obs.perturbation.cat.codes.to_numpy()
    means = np.stack([x[codes == j + 1].mean(0) for j in range(40)])
    obs_lfc = np.log2(means / ctrl)
    keep = mask & (a.var.base_mean.to_numpy() > 5)[None, :]
    res = obs_lfc[keep] - t.log2fc.to_numpy()[keep]
    assert abs(np.median(res)) < 0.03
    # shared shift: average over perturbations of genes without effects
    no_eff = keep & (spec == 0)
    cnt = no_eff.sum(0)
    ok = cnt > 10
    shift = np.where(no_eff, obs_lfc, 0.0).sum(0) / np.maximum(cnt, 1)
    slope = np.polyfit(t.shared.to_numpy()[ok], shift[ok], 1)[0]
    assert abs(slope - 1.0) < 0.05
    # the truth log2fc reproduces the observed ones
    assert np.corrcoef(obs_lfc[keep], t.log2fc.to_numpy()[keep])[0, 1] > 0.95


def test_unmeasured_targets():
    """Genome-wide screens: perturbations whose target is not among the measured genes."""
    import simpert as _sp

    a = _sp.sim.screen(n_genes=40, n_perturbations=50, unmeasured_targets=15, n_control_cells=30,
                       cells_per_perturbation=4, rng=3)
    t = _sp.sim.truth(a)
    assert len(t.targets) == 50 and sum(x.startswith("u") for x in t.targets) == 15
    ti = np.asarray(a.uns["simpert"]["truth"]["target_index"])
    assert (ti < 0).sum() == 15 and len(set(ti[ti >= 0])) == 35
    # no knockdown column for them, but their specific effects are there
    assert a.obs.loc[a.obs["perturbation"].astype(str).str.startswith("u"), "knockdown"].eq(0).all()
    # the measured-target default is unchanged by the new parameter
    b = _sp.sim.screen(n_genes=40, n_perturbations=20, n_control_cells=30, cells_per_perturbation=4, rng=3)
    c = _sp.sim.screen(n_genes=40, n_perturbations=20, unmeasured_targets=0, n_control_cells=30,
                       cells_per_perturbation=4, rng=3)
    assert (b.X != c.X).nnz == 0
    with pytest.raises(ValueError, match="'unmeasured_targets'"):
        _sp.sim.ScreenParams(n_perturbations=5, unmeasured_targets=6)
    with pytest.raises(ValueError, match="'n_perturbations'"):
        _sp.sim.ScreenParams(n_genes=10, n_perturbations=20, unmeasured_targets=5)


def test_pseudobulk_of_dense_float_counts_equals_the_sparse_integer_path():
    # a user's AnnData with dense float64 counts (integer-valued) sums as the sparse int64
    # one; dense non-integer values are refused by name
    a = sim.screen(n_genes=20, n_perturbations=3, n_control_cells=10, cells_per_perturbation=5, n_replicates=2,
                   rng=4)
    want = sim.pseudobulk(a)
    b = a.copy()
    b.X = a.X.toarray().astype(np.float64)
    got = sim.pseudobulk(b)
    np.testing.assert_array_equal(np.asarray(got.X), np.asarray(want.X.toarray() if hasattr(want.X, "toarray") else want.X))
    assert list(got.obs_names) == list(want.obs_names)
    b.X[0, 0] += 0.5
    with pytest.raises(ValueError, match="integer counts"):
        sim.pseudobulk(b)


@pytest.mark.parametrize("table_max", [None, 0])
def test_doubles_are_distinct_pairs_of_distinct_singles(monkeypatch, table_max):
    """Every pair of singles at most once, never a single with itself, with the table of all
    pairs and with the one-at-a-time draw of screens with millions of pairs (reached here by
    lowering its threshold): all 6 pairs of 4 singles."""
    from simpert.sim import _screen

    if table_max is not None:
        monkeypatch.setattr(_screen, "_PAIR_TABLE_MAX", table_max)
    a = sim.screen(n_genes=8, n_perturbations=4, n_control_cells=5, cells_per_perturbation=3, n_combinations=6,
                   rng=3)
    doubles = sorted({x for x in a.obs["perturbation"].astype(str) if "+" in x})
    pairs = {tuple(x.split("+")) for x in doubles}
    singles = sorted({x for x in a.obs["perturbation"].astype(str) if "+" not in x} - {"control"})
    assert len(doubles) == 6 and all(i != j for i, j in pairs)
    assert {frozenset(p) for p in pairs} == {frozenset((x, y)) for k, x in enumerate(singles) for y in singles[k + 1:]}
