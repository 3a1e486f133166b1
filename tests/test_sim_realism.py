"""Screens that look like real ones: dose response, latent programs, batches, multiplets,
double perturbations with genetic interactions, cell contexts.

Each feature is a ScreenParams parameter, off by default. For each: a distribution test
(the realised effect matches its parameter), an off-invariance test (switching it off, or
changing its parameter, leaves every other draw unchanged), and the scenario file runs
through :func:`simpert.calibrate.calibrate` in a tiny configuration.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest

import simpert as sp
import simpert.sim as sim
from simpert.sim._engine import fresh, hill_response
from simpert.sim._screen import STREAMS

SIMULATIONS = Path(__file__).resolve().parents[1] / "simulations"
NEW_SCENARIOS = ["dosage_hill", "programs_batches", "multiplets", "combinations", "contexts"]


def _noise_stream(seed: int) -> np.random.SeedSequence:
    """The noise root of ``screen(rng=seed)``: redraw with it reproduces the screen's counts."""
    return fresh(np.random.SeedSequence(seed)).spawn(len(STREAMS))[STREAMS.index("noise")]


def _rows(a, mask):
    return a.X[np.flatnonzero(np.asarray(mask))]


# --------------------------------------------------------------------------- shared


def test_hill_response_form():
    k = np.linspace(0, 1, 11)
    r = hill_response(k, 3.0, 0.4)
    assert r[0] == 0.0 and r[-1] == pytest.approx(1.0, abs=1e-15)
    assert np.all(np.diff(r) > 0)
    np.testing.assert_allclose(r, k ** 3 / (k ** 3 + 0.4 ** 3) * (1 + 0.4 ** 3))


@pytest.mark.parametrize("extra", [
    dict(dose_response="hill", modality="ko", unmeasured_targets=1),
    dict(n_programs=2, program_shift_sd=0.4),
    dict(n_batches=3, batch_sd=0.3, n_replicates=2),
    dict(dose_response="hill", n_programs=2, program_shift_sd=0.3, n_batches=2),
    dict(multiplet_rate=0.3, no_guide_rate=0.1, modality="ko", dose_response="hill", unmeasured_targets=1),
    dict(n_combinations=3, interaction="mixed", dose_response="hill", multiplet_rate=0.2, n_batches=2),
    dict(n_contexts=3, context_shared=0.4, n_combinations=2, multiplet_rate=0.2, n_programs=1),
])
def test_redraw_with_the_screens_noise_stream_reproduces_it(extra, tmp_path):
    """The stored model (uns) round-trips every new feature: also after write_h5ad / read_h5ad."""
    kw = dict(n_genes=50, n_perturbations=4, n_control_cells=40, cells_per_perturbation=25, rng=5)
    a = sim.screen(**kw, **extra)
    a.write_h5ad(tmp_path / "a.h5ad")
    b = ad.read_h5ad(tmp_path / "a.h5ad")
    for x in (a, b):
        r = sim.redraw(x, rng=_noise_stream(5))
        assert (r.X != a.X).nnz == 0
    # pseudobulk: redraw and expected counts use the stored per-cell design
    by = ("perturbation", "batch") if "batch" in a.obs else ("perturbation", "replicate")
    pb = sim.pseudobulk(a, by=by)
    np.testing.assert_array_equal(sim.redraw(pb, rng=_noise_stream(5)).X, pb.X)
    mu_cells = sim.expected_counts(a)
    codes = np.asarray(pb.uns["simpert"]["design"]["sample"])
    summed = np.zeros((pb.n_obs, a.n_vars))
    np.add.at(summed, codes, mu_cells)
    np.testing.assert_allclose(sim.expected_counts(pb), summed, rtol=1e-10)


def test_pseudobulk_output_with_every_feature_equals_the_pseudobulk_of_the_cells():
    kw = dict(n_genes=50, n_perturbations=5, n_control_cells=40, cells_per_perturbation=25, rng=5, n_replicates=2,
              dose_response="hill", n_programs=2, n_batches=2, multiplet_rate=0.2, no_guide_rate=0.1,
              n_combinations=2, n_contexts=2)
    cells = sim.screen(**kw)
    pb, ref = sim.screen(**kw, output="pseudobulk"), sim.pseudobulk(cells)
    np.testing.assert_array_equal(pb.X, ref.X)
    assert list(pb.obs_names) == list(ref.obs_names)
    np.testing.assert_allclose(sim.expected_counts(pb), sim.expected_counts(ref), rtol=1e-12)


def test_defaults_leave_the_schema_unchanged():
    a = sim.screen(n_genes=30, n_perturbations=3, n_control_cells=10, cells_per_perturbation=5, rng=1)
    assert list(a.obs.columns) == ["perturbation", "is_control", "target", "guide", "replicate", "size_factor",
                                   "knockdown", "escaped"]
    tr = a.uns["simpert"]["truth"]
    for key in ("dose_response", "program_loadings", "batch_log2fc"):
        assert key not in tr
    assert set(a.uns["simpert"]["count_model"]) == {"library_loc", "library_sd", "escape_rate", "ko_residual",
                                                    "activation_fold", "modality"}


@pytest.mark.parametrize("field,value,match", [
    ("dose_response", "sigmoid", "'dose_response'"),
    ("hill_coefficient", 0.0, "'hill_coefficient'"),
    ("hill_half", -0.1, "'hill_half'"),
    ("n_programs", -1, "'n_programs'"),
    ("program_density", 1.5, "'program_density'"),
    ("program_sd", -1.0, "'program_sd'"),
    ("program_shift_sd", float("inf"), "'program_shift_sd'"),
    ("n_batches", 0, "'n_batches'"),
    ("batch_sd", -0.2, "'batch_sd'"),
    ("no_guide_rate", 1.2, "'no_guide_rate'"),
    ("multiplet_rate", -0.1, "'multiplet_rate'"),
    ("n_combinations", -1, "'n_combinations'"),
    ("interaction", "epistasis", "'interaction'"),
    ("interaction_strength", 1.5, "'interaction_strength'"),
    ("n_contexts", 0, "'n_contexts'"),
    ("context_shared", 1.1, "'context_shared'"),
    ("context_sd", -1.0, "'context_sd'"),
])
def test_bad_values_name_the_parameter(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match) as err:
        sim.ScreenParams(**{field: value})
    assert "must" in str(err.value) and "got" in str(err.value)


def test_combinations_need_enough_pairs():
    with pytest.raises(ValueError, match="parameter 'n_combinations' must be at most") as err:
        sim.ScreenParams(n_perturbations=4, n_combinations=7)
    assert "= 6; got 7" in str(err.value)


def test_multiplets_need_two_perturbations():
    with pytest.raises(ValueError, match="parameter 'multiplet_rate' must be 0 with fewer than two") as err:
        sim.ScreenParams(n_perturbations=1, multiplet_rate=0.1)
    assert "got 0.1" in str(err.value)


# --------------------------------------------------------------------------- 1. dose response

DOSE = dict(n_genes=150, n_perturbations=8, n_control_cells=3000, cells_per_perturbation=800,
            cell_count_dispersion=0.0, n_guides=4, efficiency_a=1.0, efficiency_b=1.0, escape_rate=0.1,
            p_effect=0.25, effect_size=1.5, effect_sd=0.2, library_sd=0.0, mean_shape=8.0, mean_scale=6.0,
            dispersion_a0=0.05, dispersion_a1=0.1, dose_response="hill", hill_coefficient=3.0, hill_half=0.4)


@pytest.fixture(scope="module")
def dosed():
    return sim.screen(rng=12, **DOSE)


def test_downstream_effect_follows_the_hill_curve(dosed):
    """Per guide (a knockdown bin), the slope of observed log2FC on the full effect is r(k)."""
    a = dosed
    tr = a.uns["simpert"]["truth"]
    x = a.X.toarray().astype(float)
    ctrl = x[a.obs.is_control.to_numpy()].mean(0)
    spec = np.asarray(tr["specific_log2fc"])
    ti = np.asarray(tr["target_index"])
    eff = dict(zip(tr["guides"], tr["guide_efficiency"]))
    obs = a.obs
    ks, slopes, ses = [], [], []
    for j, pert in enumerate(tr["perturbations"]):
        genes = np.flatnonzero((spec[j] != 0) & (ctrl > 20))
        genes = genes[genes != ti[j]]
        for guide in sorted(set(obs.guide.astype(str)[obs.perturbation.astype(str) == pert])):
            cells = ((obs.guide.astype(str) == guide) & ~obs.escaped).to_numpy()
            lfc = np.log2(x[cells][:, genes].mean(0) / ctrl[genes])
            e = spec[j, genes]
            slope = float(e @ lfc / (e @ e))
            resid = lfc - slope * e
            ses.append(float(np.sqrt(resid @ resid / max(genes.size - 1, 1) / (e @ e))))
            ks.append(eff[guide])
            slopes.append(slope)
    ks, slopes, ses = map(np.asarray, (ks, slopes, ses))
    assert ks.size == 32 and ks.min() < 0.3 and ks.max() > 0.7  # the knockdown range is covered
    r = hill_response(ks, 3.0, 0.4)
    z = (slopes - r) / np.maximum(ses, 0.01)
    assert np.max(np.abs(slopes - r)) < 0.08, np.c_[ks, slopes, r]
    assert np.mean(z ** 2) < 3.0, z
    # the linear law r(k) = k (no Hill curve) is rejected by the same data
    assert np.mean(((slopes - ks) / np.maximum(ses, 0.01)) ** 2) > 20


def test_dose_truth_is_the_monte_carlo_mean(dosed):
    """truth log2FC = log2 of the mean NB mean over the perturbation's cells (guides, escapers)."""
    a = dosed
    tr = sim.truth(a)
    mu = sim.expected_counts(a)  # size factors are 1 (library_sd = 0)
    codes = a.obs.perturbation.cat.codes.to_numpy()
    base = a.var.base_mean.to_numpy()
    spec = np.asarray(a.uns["simpert"]["truth"]["specific_log2fc"])
    worst = 0.0
    for j in range(DOSE["n_perturbations"]):
        mc = np.log2(mu[codes == j + 1].mean(0) / base)
        genes = spec[j] != 0
        worst = max(worst, float(np.max(np.abs(mc[genes] - tr.log2fc.to_numpy()[j, genes]))))
    # Monte Carlo error of 800 cells over guides x escape: a few hundredths of a log2 unit
    assert worst < 0.08, worst
    # the recorded mean response is the mean of r(k) over the guides
    g = np.asarray(a.uns["simpert"]["truth"]["guide_efficiency"]).reshape(DOSE["n_perturbations"], 4)
    np.testing.assert_allclose(a.uns["simpert"]["truth"]["dose_response"],
                               hill_response(g, 3.0, 0.4).mean(1), rtol=1e-12)


def test_dose_truth_ko_monte_carlo():
    """KO: edited cells (probability = efficiency) respond at r(1 - ko_residual), others not at all."""
    p = dict(DOSE, modality="ko", n_perturbations=4, cells_per_perturbation=3000, n_control_cells=200)
    a = sim.screen(rng=13, **p)
    tr = a.uns["simpert"]["truth"]
    mu = sim.expected_counts(a)
    codes = a.obs.perturbation.cat.codes.to_numpy()
    base = a.var.base_mean.to_numpy()
    spec = np.asarray(tr["specific_log2fc"])
    for j in range(4):
        mc = np.log2(mu[codes == j + 1].mean(0) / base)
        genes = spec[j] != 0
        assert np.max(np.abs(mc[genes] - np.asarray(tr["log2fc"])[j, genes])) < 0.06
    kd = a.obs.knockdown.to_numpy()[codes > 0]
    assert set(np.round(np.unique(kd), 12)) <= {0.0, 0.9}
    kbar = np.asarray(tr["guide_efficiency"]).reshape(4, 4).mean(1)
    np.testing.assert_allclose(tr["dose_response"], kbar * hill_response(0.9, 3.0, 0.4), rtol=1e-12)


def test_dose_response_changes_only_the_responding_cells():
    kw = dict(n_genes=80, n_perturbations=5, n_control_cells=60, cells_per_perturbation=40, escape_rate=0.3,
              n_replicates=2, systematic_strength=0.5, rng=21)
    off = sim.screen(**kw)
    on = sim.screen(**kw, dose_response="hill", hill_coefficient=2.0, hill_half=0.5)
    steep = sim.screen(**kw, dose_response="hill", hill_coefficient=6.0, hill_half=0.5)
    for x in (on, steep):
        for col in ("perturbation", "guide", "replicate", "size_factor", "knockdown", "escaped"):
            np.testing.assert_array_equal(x.obs[col].to_numpy(), off.obs[col].to_numpy())
        # controls and escapers carry no specific effect: their counts are identical
        keep = off.obs.is_control.to_numpy() | off.obs.escaped.to_numpy()
        assert keep.sum() > 60 and (_rows(x, keep) != _rows(off, keep)).nnz == 0
        np.testing.assert_array_equal(sim.truth(x).specific, sim.truth(off).specific)
        np.testing.assert_array_equal(x.var.base_mean, off.var.base_mean)
    resp = ~(off.obs.is_control.to_numpy() | off.obs.escaped.to_numpy())
    assert (_rows(on, resp) != _rows(off, resp)).nnz > 0


# --------------------------------------------------------------------------- 2. latent programs


def _implied_count_correlation(base, alpha, loadings, sd):
    """Exact correlation of NB counts whose log2 means are base + a . L_g, a ~ N(0, sd^2 I)."""
    c2 = (np.log(2.0) * sd) ** 2
    q = loadings.T @ loadings  # G x G: L_g . L_h
    d = np.diag(q)
    m1 = base * np.exp(c2 * d / 2)  # E[mu]
    m2 = base ** 2 * np.exp(2 * c2 * d)  # E[mu^2]
    cov = np.outer(m1, m1) * (np.exp(c2 * q) - 1.0)
    var = m1 + alpha * m2 + (m2 - m1 ** 2)
    np.fill_diagonal(cov, var)
    return cov / np.sqrt(np.outer(var, var))


def test_control_gene_correlation_matches_the_loadings():
    a = sim.screen(rng=31, n_genes=40, n_perturbations=0, n_control_cells=8000, library_sd=0.0, mean_shape=20.0,
                   mean_scale=5.0, dispersion_a0=0.05, dispersion_a1=0.5, n_programs=2, program_density=0.4,
                   program_sd=0.6)
    tr = a.uns["simpert"]["truth"]
    L = np.asarray(tr["program_loadings"])
    assert L.shape == (2, 40)
    implied = _implied_count_correlation(a.var.base_mean.to_numpy(), a.var.dispersion.to_numpy(), L, 0.6)
    real = np.corrcoef(a.X.toarray().astype(float), rowvar=False)
    iu = np.triu_indices(40, 1)
    imp, rea = implied[iu], real[iu]
    strong = np.abs(imp) > 0.1
    assert strong.sum() > 50
    assert np.all(np.sign(rea[strong]) == np.sign(imp[strong]))
    assert np.max(np.abs(rea - imp)) < 0.06, np.max(np.abs(rea - imp))
    slope = float(imp @ rea / (imp @ imp))
    assert abs(slope - 1.0) < 0.05, slope
    # realised per-cell activity ~ N(0, program_sd^2)
    act = a.obs[["program_0", "program_1"]].to_numpy()
    assert np.all(np.abs(act.mean(0)) < 4 * 0.6 / np.sqrt(8000))
    assert np.all(np.abs(act.std(0, ddof=1) / 0.6 - 1) < 4 / np.sqrt(2 * 8000))


def test_loadings_are_sparse_and_signed():
    a = sim.screen(rng=32, n_genes=2000, n_perturbations=2, n_control_cells=5, cells_per_perturbation=3,
                   n_programs=5, program_density=0.1)
    L = np.asarray(a.uns["simpert"]["truth"]["program_loadings"])
    nz = L != 0
    assert abs(nz.mean() - 0.1) < 4 * np.sqrt(0.09 / L.size)
    vals = L[nz]
    assert abs(vals.std() - 1.0) < 4 / np.sqrt(2 * vals.size) and abs(vals.mean()) < 4 / np.sqrt(vals.size)


def test_program_shift_shows_in_the_mean_profile():
    a = sim.screen(rng=33, n_genes=200, n_perturbations=20, n_control_cells=2000, cells_per_perturbation=300,
                   cell_count_dispersion=0.0, escape_rate=0.0, p_effect=0.0, library_sd=0.0, mean_shape=8.0,
                   mean_scale=5.0, n_programs=3, program_density=0.3, program_sd=0.5, program_shift_sd=0.6)
    tr = a.uns["simpert"]["truth"]
    L, shift = np.asarray(tr["program_loadings"]), np.asarray(tr["program_shift"])
    assert shift.shape == (20, 3) and abs(shift.std() / 0.6 - 1) < 0.35
    resp = shift @ L
    ti = np.asarray(tr["target_index"])
    resp[np.arange(20), ti] = 0.0
    np.testing.assert_allclose(tr["program_log2fc"], resp, atol=1e-12)
    # the truth (no escape, no systematic response): log2FC off the target = loadings x shift
    lfc = np.asarray(tr["log2fc"]).copy()
    mask = np.ones_like(lfc, dtype=bool)
    mask[np.arange(20), ti] = False
    np.testing.assert_allclose(lfc[mask], resp[mask], atol=1e-12)
    # realised: observed log2 ratio of means regresses on loadings x shift with slope 1
    x = a.X.toarray().astype(float)
    ctrl = x[a.obs.is_control.to_numpy()].mean(0)
    codes = a.obs.perturbation.cat.codes.to_numpy()
    obs = np.stack([np.log2(x[codes == j + 1].mean(0) / ctrl) for j in range(20)])
    keep = mask & (ctrl > 10)[None, :] & (resp != 0)
    slope = float(resp[keep] @ obs[keep] / (resp[keep] @ resp[keep]))
    assert abs(slope - 1.0) < 0.05, slope
    assert np.corrcoef(resp[keep], obs[keep])[0, 1] > 0.9


def test_programs_change_no_other_draw():
    kw = dict(n_genes=80, n_perturbations=5, n_control_cells=60, cells_per_perturbation=30, escape_rate=0.2,
              rng=34)
    none = sim.screen(**kw)
    flat = sim.screen(**kw, n_programs=3, program_sd=0.0)  # programs drawn, then zero
    np.testing.assert_array_equal(flat.X.toarray(), none.X.toarray())
    calm = sim.screen(**kw, n_programs=3)
    shifted = sim.screen(**kw, n_programs=3, program_shift_sd=0.8)
    for x in (calm, shifted):
        for col in ("perturbation", "guide", "size_factor", "knockdown", "escaped", "program_0", "program_2"):
            np.testing.assert_array_equal(x.obs[col].to_numpy(), (calm if col.startswith("program") else none)
                                          .obs[col].to_numpy())
    # a perturbation's program shift touches neither controls nor escapers
    keep = none.obs.is_control.to_numpy() | none.obs.escaped.to_numpy()
    assert (_rows(shifted, keep) != _rows(calm, keep)).nnz == 0
    spec = sim.truth(shifted).specific.to_numpy() - np.asarray(shifted.uns["simpert"]["truth"]["program_log2fc"])
    np.testing.assert_allclose(spec, sim.truth(none).specific.to_numpy(), atol=1e-12)


# --------------------------------------------------------------------------- 3. batches


def test_batch_offsets_and_assignment_follow_the_parameters():
    a = sim.screen(rng=41, n_genes=400, n_perturbations=4, n_control_cells=4000, cells_per_perturbation=50,
                   n_batches=40, batch_sd=0.3, library_sd=0.0)
    tr = a.uns["simpert"]["truth"]
    off = np.asarray(tr["batch_log2fc"])
    assert off.shape == (40, 400)
    assert abs(off.std(ddof=1) / 0.3 - 1) < 4 / np.sqrt(2 * off.size)
    assert abs(off.mean()) < 4 * 0.3 / np.sqrt(off.size)
    assert list(a.obs.batch.cat.categories) == [f"b{i}" for i in range(40)]
    counts = a.obs.batch.value_counts().reindex(a.obs.batch.cat.categories).to_numpy()
    expected = a.n_obs / 40
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 39 + 4 * np.sqrt(2 * 39)  # uniform assignment


def test_realised_batch_shift_is_the_offset():
    a = sim.screen(rng=42, n_genes=300, n_perturbations=0, n_control_cells=12000, n_batches=3, batch_sd=0.4,
                   library_sd=0.0, mean_shape=8.0, mean_scale=5.0)
    off = np.asarray(a.uns["simpert"]["truth"]["batch_log2fc"])
    x = a.X.toarray().astype(float)
    b = a.obs.batch.cat.codes.to_numpy()
    base = a.var.base_mean.to_numpy()
    keep = base > 10
    for i in range(3):
        real = np.log2(x[b == i].mean(0) / base)[keep]
        slope = float(off[i, keep] @ real / (off[i, keep] @ off[i, keep]))
        assert abs(slope - 1) < 0.05, slope
        assert np.max(np.abs(real - off[i, keep])) < 0.15


def _auroc(score, positive):
    from scipy.stats import rankdata

    r = rankdata(score)
    n1, n0 = positive.sum(), (~positive).sum()
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def test_de_with_the_batch_covariate_recovers_the_truth_better():
    """Batches balanced by random assignment: the covariate leaves the log2FC estimates about
    as they are but removes the batch variance from the residuals, so true effects are found."""
    a = sim.screen(rng=43, n_genes=300, n_perturbations=6, n_control_cells=600, cells_per_perturbation=90,
                   cell_count_dispersion=0.0, n_batches=3, batch_sd=0.5, mean_shape=4.0, mean_scale=5.0,
                   escape_rate=0.0, p_effect=0.1, effect_size=0.5)
    pb = sim.pseudobulk(a, by=("perturbation", "batch"))
    assert pb.n_obs == 21 and set(pb.obs.batch.astype(str)) == {"b0", "b1", "b2"}
    # the carried-over replicate column repeats within a perturbation: deseq would take the
    # samples for cells and sum them again; without it they are used as samples
    pb.obs = pb.obs.drop(columns="replicate")
    truth = sim.truth(a).log2fc
    positive = np.abs(truth.to_numpy()) > 0.05
    res = {}
    for design in ("~ batch + perturbation", "perturbation"):
        t = sp.de.deseq(pb, control="control", design=design).table

        def wide(col, t=t):
            return t.pivot(index="perturbation", columns="gene", values=col).loc[truth.index, truth.columns].to_numpy()

        est, p, padj = wide("log2fc"), wide("pvalue"), wide("padj")
        ok = np.isfinite(p)
        hit = np.nan_to_num(padj, nan=1.0) < 0.1
        res[design] = dict(rmse=float(np.sqrt(np.nanmean((est - truth.to_numpy()) ** 2))),
                           auroc=_auroc(-np.log(p[ok] + 1e-300), positive[ok]),
                           recall=float(hit[positive].mean()),
                           fdp=float((hit & ~positive).sum() / max(hit.sum(), 1)))
    cov, plain = res["~ batch + perturbation"], res["perturbation"]
    # measured (seed 43): recall 0.89 vs 0.20, AUROC 0.990 vs 0.978, RMSE 0.075 vs 0.076
    assert cov["recall"] > 2 * plain["recall"] and cov["recall"] > 0.7, res
    assert cov["auroc"] > plain["auroc"], res
    assert cov["rmse"] <= plain["rmse"] * 1.02, res
    assert cov["fdp"] < 0.15, res


def test_batches_change_no_other_draw():
    kw = dict(n_genes=80, n_perturbations=5, n_control_cells=60, cells_per_perturbation=30, n_replicates=2, rng=44)
    one = sim.screen(**kw)
    flat = sim.screen(**kw, n_batches=3, batch_sd=0.0)
    np.testing.assert_array_equal(flat.X.toarray(), one.X.toarray())
    strong = sim.screen(**kw, n_batches=3, batch_sd=0.5)
    for col in ("perturbation", "guide", "replicate", "size_factor", "knockdown", "escaped"):
        np.testing.assert_array_equal(strong.obs[col].to_numpy(), one.obs[col].to_numpy())
    np.testing.assert_array_equal(strong.obs.batch.to_numpy(), flat.obs.batch.to_numpy())
    np.testing.assert_array_equal(sim.truth(strong).log2fc, sim.truth(one).log2fc)
    assert (strong.X != one.X).nnz > 0


# --------------------------------------------------------------------------- 4. multiplets and cells without a guide

MIX = dict(n_genes=120, n_perturbations=10, n_control_cells=400, cells_per_perturbation=600,
           cell_count_dispersion=0.0, escape_rate=0.1, p_effect=0.2, effect_size=1.0, library_sd=0.0,
           mean_shape=8.0, mean_scale=6.0, systematic_strength=0.5, multiplet_rate=0.3, no_guide_rate=0.1)


@pytest.fixture(scope="module")
def mixed():
    return sim.screen(rng=51, **MIX)


def test_multiplet_and_no_guide_fractions(mixed):
    obs = mixed.obs
    pert = ~obs.is_control.to_numpy()
    n = int(pert.sum())
    ng = obs.n_guides.to_numpy()
    assert set(ng[~pert]) == {1}
    f0, f2 = float(np.mean(ng[pert] == 0)), float(np.mean(ng[pert] == 2))
    assert abs(f0 - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n), f0
    m = 0.9 * 0.3
    assert abs(f2 - m) < 4 * np.sqrt(m * (1 - m) / n), f2
    # the second perturbation: another one, uniformly; its guide is one of its own
    two = ng == 2
    first, second = obs.perturbation.astype(str).to_numpy()[two], obs.second_perturbation.to_numpy()[two]
    assert np.all(first != second) and set(obs.second_perturbation[~two]) == {""}
    counts = np.unique(second, return_counts=True)[1]
    expected = two.sum() / 10
    assert counts.size == 10 and np.sum((counts - expected) ** 2 / expected) < 9 + 4 * np.sqrt(18)
    sg = obs.second_guide.to_numpy()[two]
    assert all(g.rsplit("_", 1)[0] == p for g, p in zip(sg, second))
    # cells without a guide show nothing: no knockdown, no escape flag
    zero = ng == 0
    assert obs.knockdown.to_numpy()[zero].max() == 0.0 and not obs.escaped.to_numpy()[zero].any()


def test_doublet_profile_is_the_sum_of_the_two_log2_effects(mixed):
    a = mixed
    tr = a.uns["simpert"]["truth"]
    spec = np.asarray(tr["specific_log2fc"]).copy()
    ti = np.asarray(tr["target_index"])
    spec[np.arange(10), ti] = 0.0  # the targets' knockdown is per cell (1 - k)
    shared = np.asarray(tr["shared_log2fc"])
    obs = a.obs
    pos = {p: i for i, p in enumerate(tr["perturbations"])}
    cells = np.flatnonzero((obs.n_guides == 2).to_numpy() & ~obs.escaped.to_numpy())
    p1 = np.array([pos[x] for x in obs.perturbation.astype(str).to_numpy()[cells]])
    p2 = np.array([pos[x] for x in obs.second_perturbation.to_numpy()[cells]])
    log2 = shared[None, :] + spec[p1] + spec[p2]
    log2[np.arange(cells.size), ti[p1]] += np.log2(1 - obs.knockdown.to_numpy()[cells])
    log2[np.arange(cells.size), ti[p2]] += np.log2(1 - obs.second_knockdown.to_numpy()[cells])
    pred = a.var.base_mean.to_numpy()[None, :] * np.exp2(log2)
    np.testing.assert_allclose(sim.expected_counts(a)[cells], pred, rtol=1e-10)
    # realised: the doublets' summed counts per gene against the summed sum-of-effects means
    x = a.X[cells].toarray().astype(float).sum(0)
    mu = pred.sum(0)
    alpha = a.var.dispersion.to_numpy()
    z = (x - mu) / np.sqrt(mu + alpha * (pred ** 2).sum(0))
    assert np.max(np.abs(z)) < 4.5, np.max(np.abs(z))
    # the first perturbation's effects alone do not explain them
    alone = a.var.base_mean.to_numpy()[None, :] * np.exp2(shared[None, :] + spec[p1])
    z1 = (x - alone.sum(0)) / np.sqrt(alone.sum(0) + alpha * (alone ** 2).sum(0))
    assert np.max(np.abs(z1)) > 10


def test_labelled_truth_is_the_monte_carlo_mean():
    """truth log2FC: the mean over cells labelled p (no guide, escapers, multiplets) vs control.

    Four perturbations of 3000 cells, so each partner of a multiplet has hundreds of cells
    (measured: largest gap 0.031 log2, median 0.001)."""
    a = sim.screen(rng=51, **dict(MIX, n_perturbations=4, cells_per_perturbation=3000))
    mu = sim.expected_counts(a)
    codes = a.obs.perturbation.cat.codes.to_numpy()
    base = a.var.base_mean.to_numpy()
    tr = a.uns["simpert"]["truth"]
    lfc, single = np.asarray(tr["log2fc"]), np.asarray(tr["single_log2fc"])
    gaps = np.stack([np.log2(mu[codes == j + 1].mean(0) / base) - lfc[j] for j in range(4)])
    assert np.max(np.abs(gaps)) < 0.06 and np.median(np.abs(gaps)) < 0.005, gaps
    # contamination dilutes the single-guide profile
    assert np.mean(np.abs(lfc)) < np.mean(np.abs(single))


def test_multiplets_change_only_the_cells_they_touch():
    kw = dict(n_genes=80, n_perturbations=6, n_control_cells=60, cells_per_perturbation=60, escape_rate=0.2,
              n_replicates=2, rng=52)
    off = sim.screen(**kw)
    on = sim.screen(**kw, multiplet_rate=0.4, no_guide_rate=0.2)
    for col in ("perturbation", "guide", "replicate", "size_factor"):
        np.testing.assert_array_equal(on.obs[col].to_numpy(), off.obs[col].to_numpy())
    single = (on.obs.n_guides == 1).to_numpy()
    assert single.sum() > 200
    for col in ("knockdown", "escaped"):
        np.testing.assert_array_equal(on.obs[col].to_numpy()[single], off.obs[col].to_numpy()[single])
    # controls and every single-guide cell: identical counts
    assert (_rows(on, single) != _rows(off, single)).nnz == 0
    assert (_rows(on, ~single) != _rows(off, ~single)).nnz > 0
    np.testing.assert_array_equal(sim.truth(on).specific, sim.truth(off).specific)
    np.testing.assert_array_equal(on.uns["simpert"]["truth"]["single_log2fc"], sim.truth(off).log2fc)
    # the multiplet draw does not depend on the no-guide rate, except that no-guide cells are none
    more = sim.screen(**kw, multiplet_rate=0.4, no_guide_rate=0.0)
    keep = (on.obs.n_guides > 0).to_numpy()
    np.testing.assert_array_equal(on.obs.second_perturbation.to_numpy()[keep],
                                  more.obs.second_perturbation.to_numpy()[keep])


# --------------------------------------------------------------------------- 5. double perturbations

COMBO = dict(n_genes=120, n_perturbations=6, n_control_cells=1500, cells_per_perturbation=1500,
             cell_count_dispersion=0.0, escape_rate=0.1, p_effect=0.25, effect_size=1.0, library_sd=0.0,
             mean_shape=8.0, mean_scale=6.0, n_combinations=4, interaction_strength=0.6)
#: expected interaction (double - a - b) of each type, s = 0.6
FORMULA = {
    "additive": lambda a, b, dom_b: 0.0 * a,
    "synergistic": lambda a, b, dom_b: 0.6 * (a + b),
    "buffering": lambda a, b, dom_b: -0.6 * (a + b),
    "epistatic": lambda a, b, dom_b: -a if dom_b else -b,
}


def _mc_z(ratios, lfc):
    """z-scores of the per-cell mean expression ratio against ``2^lfc`` (Monte Carlo error)."""
    n = ratios.shape[0]
    mean, se = ratios.mean(0), ratios.std(0, ddof=1) / np.sqrt(n)
    target = np.exp2(lfc)
    return (mean - target) / np.maximum(se, 1e-9 * target)


def _singles(a, n_single):
    """Singles' full-dose effects with the target columns zeroed (the knockdown is per cell)."""
    tr = a.uns["simpert"]["truth"]
    spec = np.asarray(tr["specific_log2fc"])[:n_single].copy()
    ti = np.asarray(tr["target_index"])[:n_single]
    spec[np.arange(n_single), ti] = 0.0
    return spec


@pytest.mark.parametrize("kind", ["additive", "synergistic", "buffering", "epistatic"])
def test_double_follows_its_interaction_model(kind):
    a = sim.screen(rng=61, interaction=kind, **COMBO)
    tr = a.uns["simpert"]["truth"]
    P, C = 6, 4
    names = list(tr["perturbations"])
    pairs = np.asarray(tr["combination_pairs"])
    assert names[P:] == [f"{names[i]}+{names[j]}" for i, j in pairs] and len(set(map(tuple, pairs))) == C
    assert list(tr["combination_type"]) == [kind] * C
    single = _singles(a, P)
    coef = np.asarray(tr["combination_coef"])
    for c, (i, j) in enumerate(pairs):
        A, B = single[i], single[j]
        dom_b = coef[c, 0] == 0.0
        if kind == "epistatic":  # the double equals one of the singles
            assert sorted(coef[c]) == [0.0, 1.0]
        np.testing.assert_allclose(tr["combination_effects"][c], A + B + FORMULA[kind](A, B, dom_b), atol=1e-12)
        np.testing.assert_allclose(tr["combination_interaction"][c], FORMULA[kind](A, B, dom_b), atol=1e-12)
    # per cell: the NB mean is base * 2^(double's effect) with both targets knocked down
    obs = a.obs
    ti = np.asarray(tr["target_index"])
    codes = obs.perturbation.cat.codes.to_numpy()
    cells = np.flatnonzero((codes > P) & ~obs.escaped.to_numpy())
    c_of = codes[cells] - 1 - P
    log2 = np.asarray(tr["combination_effects"])[c_of]
    log2[np.arange(cells.size), ti[pairs[c_of, 0]]] += np.log2(1 - obs.knockdown.to_numpy()[cells])
    log2[np.arange(cells.size), ti[pairs[c_of, 1]]] += np.log2(1 - obs.second_knockdown.to_numpy()[cells])
    mu = sim.expected_counts(a)
    np.testing.assert_allclose(mu[cells], a.var.base_mean.to_numpy()[None, :] * np.exp2(log2), rtol=1e-10)
    # Monte Carlo: truth log2FC of each double = log2 of its cells' mean NB mean over controls
    base = a.var.base_mean.to_numpy()
    lfc = np.asarray(tr["log2fc"])
    z = np.stack([_mc_z(mu[codes == P + 1 + c] / base, lfc[P + c]) for c in range(C)])
    assert np.max(np.abs(z)) < 4.5, np.max(np.abs(z))
    # and the counts: summed per double and gene against the summed NB means
    x = a.X.toarray().astype(float)
    alpha = a.var.dispersion.to_numpy()
    for c in range(C):
        rows = codes == P + 1 + c
        m = mu[rows]
        z = (x[rows].sum(0) - m.sum(0)) / np.sqrt(m.sum(0) + alpha * (m ** 2).sum(0))
        assert np.max(np.abs(z)) < 4.5


def test_doubles_expected_counts_without_the_second_guides():
    """A caller that knows only each cell's group and first knockdown (as the oracle's design
    does) gets, for a double, the second target at its mean knockdown over the guides."""
    import dataclasses

    from simpert.sim._engine import expected_matrix, model_from_uns
    from simpert.sim._pseudobulk import design_from_obs

    a = sim.screen(rng=66, n_genes=60, n_perturbations=5, n_control_cells=20, cells_per_perturbation=400,
                   n_combinations=2, escape_rate=0.0, library_sd=0.0)
    model, design = model_from_uns(a), design_from_obs(a.obs, a.uns["simpert"])
    o = a.obs
    args = (o.size_factor.to_numpy(), o.escaped.to_numpy(), o.knockdown.to_numpy())
    known = expected_matrix(model, design, *args, knockdown2=o.second_knockdown.to_numpy())
    blind = expected_matrix(model, dataclasses.replace(design, second_group=None, second_guide=None, no_guide=None),
                            *args)
    codes = o.perturbation.cat.codes.to_numpy()
    for c in range(2):
        rows = codes == 6 + c
        # the same mean over the double's cells up to the guides drawn (400 cells, 2 guides)
        np.testing.assert_allclose(blind[rows].mean(0), known[rows].mean(0), rtol=0.1)
        tr = a.uns["simpert"]["truth"]
        np.testing.assert_allclose(np.log2(blind[rows].mean(0) / a.var.base_mean.to_numpy()),
                                   np.asarray(tr["log2fc"])[5 + c], atol=0.15)


def test_double_with_a_dose_response_monte_carlo():
    """Each single at its own dose: truth = mean over guide pairs of the product of the parts."""
    a = sim.screen(rng=62, interaction="synergistic", dose_response="hill", hill_coefficient=3.0, hill_half=0.4,
                   efficiency_a=1.0, efficiency_b=1.0, modality="ko", **COMBO)
    tr = a.uns["simpert"]["truth"]
    mu = sim.expected_counts(a)
    codes = a.obs.perturbation.cat.codes.to_numpy()
    base = a.var.base_mean.to_numpy()
    lfc = np.asarray(tr["log2fc"])
    z = np.stack([_mc_z(mu[codes == 7 + c] / base, lfc[6 + c]) for c in range(4)])
    assert np.max(np.abs(z)) < 4.5, np.max(np.abs(z))
    # the doses matter: without the dose response the doubles' truth is another one
    plain = sim.screen(rng=62, interaction="synergistic", efficiency_a=1.0, efficiency_b=1.0, modality="ko", **COMBO)
    assert np.max(np.abs(lfc[6:] - np.asarray(plain.uns["simpert"]["truth"]["log2fc"])[6:])) > 0.5


def test_truth_object_lists_the_doubles_and_contexts():
    a = sim.screen(rng=65, n_genes=40, n_perturbations=5, n_control_cells=20, cells_per_perturbation=10,
                   n_combinations=3, interaction="mixed", n_contexts=2, context_shared=0.5)
    t = sim.truth(a)
    tr = a.uns["simpert"]["truth"]
    assert list(t.combinations.index) == list(tr["perturbations"][5:])
    assert all(f"{r.a}+{r.b}" == lab for lab, r in t.combinations.iterrows())
    np.testing.assert_array_equal(t.interaction.to_numpy(), tr["combination_interaction"])
    assert set(t.context_log2fc) == {"c0", "c1"} and t.context_log2fc["c1"].shape == (8, 40)
    plain = sim.truth(sim.screen(rng=65, n_genes=40, n_perturbations=5, n_control_cells=20, cells_per_perturbation=10))
    assert plain.combinations is None and plain.interaction is None and plain.context_log2fc is None


def test_mixed_interactions_draw_every_type():
    a = sim.screen(rng=63, n_genes=50, n_perturbations=30, n_control_cells=10, cells_per_perturbation=3,
                   n_combinations=200, interaction="mixed")
    tr = a.uns["simpert"]["truth"]
    types, counts = np.unique(np.asarray(tr["combination_type"]), return_counts=True)
    assert list(types) == ["additive", "buffering", "epistatic", "synergistic"]
    assert np.sum((counts - 50) ** 2 / 50) < 3 + 4 * np.sqrt(6)
    coef = np.asarray(tr["combination_coef"])
    t = np.asarray(tr["combination_type"])
    np.testing.assert_array_equal(coef[t == "synergistic"], 1.5)
    np.testing.assert_array_equal(coef[t == "buffering"], 0.5)
    assert np.all(coef[t == "epistatic"].sum(1) == 1.0)


def test_combinations_change_no_other_draw():
    kw = dict(n_genes=80, n_perturbations=6, n_control_cells=60, cells_per_perturbation=40, escape_rate=0.2,
              n_replicates=2, rng=64)
    off = sim.screen(**kw)
    add = sim.screen(**kw, n_combinations=4)
    buf = sim.screen(**kw, n_combinations=4, interaction="buffering")
    n = off.n_obs
    for x in (add, buf):  # the doubles' cells come after every single's: those are unchanged
        assert (x.X[:n] != off.X).nnz == 0
        for col in off.obs.columns:
            np.testing.assert_array_equal(x.obs[col].astype(str).to_numpy()[:n], off.obs[col].astype(str).to_numpy())
        np.testing.assert_array_equal(sim.truth(x).log2fc.to_numpy()[:6], sim.truth(off).log2fc.to_numpy())
    # another interaction model: the same pairs, cells, guides and noise; other counts in the doubles
    for col in ("perturbation", "guide", "second_guide", "size_factor", "knockdown", "second_knockdown", "escaped"):
        np.testing.assert_array_equal(add.obs[col].to_numpy(), buf.obs[col].to_numpy())
    np.testing.assert_array_equal(add.uns["simpert"]["truth"]["combination_pairs"],
                                  buf.uns["simpert"]["truth"]["combination_pairs"])
    assert (add.X[n:] != buf.X[n:]).nnz > 0


# --------------------------------------------------------------------------- 6. contexts

CTX = dict(n_genes=400, n_perturbations=40, n_control_cells=10, cells_per_perturbation=3, p_effect=0.1,
           n_contexts=3, context_sd=0.5)


def _cross_context_correlation(a):
    """Correlation of the perturbations' specific effects (targets excluded) between contexts."""
    tr = a.uns["simpert"]["truth"]
    spec = np.asarray(tr["context_specific_log2fc"]).copy()
    ti = np.asarray(tr["target_index"])
    spec[:, np.arange(spec.shape[1]), ti] = 0.0
    K = spec.shape[0]
    return [float(np.corrcoef(spec[i].ravel(), spec[j].ravel())[0, 1]) for i in range(K) for j in range(i + 1, K)]


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8])
def test_cross_context_correlation_matches_context_shared(rho):
    a = sim.screen(rng=71, context_shared=rho, **CTX)
    r = _cross_context_correlation(a)
    # 40 x 400 effects, 10% non-zero: the correlation's SE is about 0.02
    assert np.all(np.abs(np.asarray(r) - rho) < 0.07), (rho, r)
    off = np.asarray(a.uns["simpert"]["truth"]["context_offsets"])
    assert off.shape == (3, 400) and abs(off.std(ddof=1) / 0.5 - 1) < 4 / np.sqrt(2 * off.size)
    counts = a.obs.context.value_counts().to_numpy()
    assert list(a.obs.context.cat.categories) == ["c0", "c1", "c2"] and counts.min() > 0.2 * a.n_obs


def test_context_effects_are_realised_per_context():
    """Per context: observed log2FC (cells of p in c over controls in c) against the context's truth."""
    a = sim.screen(rng=72, n_genes=200, n_perturbations=8, n_control_cells=3000, cells_per_perturbation=1500,
                   cell_count_dispersion=0.0, escape_rate=0.0, p_effect=0.2, effect_size=1.0, library_sd=0.0,
                   mean_shape=8.0, mean_scale=5.0, n_contexts=2, context_shared=0.3, context_sd=0.5)
    tr = a.uns["simpert"]["truth"]
    x = a.X.toarray().astype(float)
    codes = a.obs.perturbation.cat.codes.to_numpy()
    ctx = a.obs.context.cat.codes.to_numpy()
    clfc = np.asarray(tr["context_log2fc"])
    mu = sim.expected_counts(a)
    base = a.var.base_mean.to_numpy()
    off = np.asarray(tr["context_offsets"])
    for k in range(2):
        ctrl = x[(codes == 0) & (ctx == k)].mean(0)
        # controls in context k: base mean times the context's offset
        assert abs(float(np.polyfit(off[k], np.log2(ctrl / base), 1)[0]) - 1) < 0.05
        obs = np.stack([np.log2(x[(codes == j + 1) & (ctx == k)].mean(0) / ctrl) for j in range(8)])
        keep = (ctrl > 10)[None, :] & (clfc[k] != 0)
        slope = float(clfc[k][keep] @ obs[keep] / (clfc[k][keep] @ clfc[k][keep]))
        assert abs(slope - 1) < 0.05, slope
        z = np.stack([_mc_z(mu[(codes == j + 1) & (ctx == k)] / (base * np.exp2(off[k])), clfc[k, j])
                      for j in range(8)])
        assert np.max(np.abs(z)) < 4.5
    # the two contexts' realised profiles differ where their truths differ
    assert np.corrcoef(clfc[0].ravel(), clfc[1].ravel())[0, 1] < 0.6


def test_context_view_is_a_screen_of_its_own(tmp_path):
    a = sim.screen(rng=73, n_genes=60, n_perturbations=6, n_control_cells=80, cells_per_perturbation=40,
                   n_contexts=2, context_shared=0.5, n_combinations=2)
    tr = a.uns["simpert"]["truth"]
    for k, name in enumerate(["c0", "c1"]):
        v = sim.context_view(a, name)
        cells = (a.obs.context.astype(str) == name).to_numpy()
        assert v.n_obs == cells.sum() and set(v.obs.context.astype(str)) == {name}
        np.testing.assert_array_equal(sim.truth(v).log2fc.to_numpy(), np.asarray(tr["context_log2fc"])[k])
        np.testing.assert_allclose(sim.expected_counts(v), sim.expected_counts(a)[cells], rtol=1e-10)
        assert not any(key.startswith("context_") for key in v.uns["simpert"]["truth"])
        v.write_h5ad(tmp_path / f"{name}.h5ad")
        back = ad.read_h5ad(tmp_path / f"{name}.h5ad")
        np.testing.assert_allclose(sim.expected_counts(back), sim.expected_counts(v), rtol=1e-12)
        # the interventional split, predictors and metrics run on it
        split = sp.predict.split(v, test_fraction=0.5, rng=0)
        preds = sp.predict.make(v, split, ["oracle", "mean"], rng=0)
        scores = sp.metrics.score(preds, v, split, metrics=["pearson_delta"])
        assert np.isfinite(scores["value"]).all()
    with pytest.raises(ValueError, match="parameter 'context' must be one of the contexts"):
        sim.context_view(a, "c7")
    with pytest.raises(ValueError, match="parameter 'adata' must be cells of a screen simulated with n_contexts"):
        sim.context_view(sim.screen(rng=1, n_genes=20, n_perturbations=2, n_control_cells=5,
                                    cells_per_perturbation=3), "c0")


def test_unknown_context_gives_the_mean_over_contexts():
    """Without the cells' contexts (as a caller that builds its own Design), expected counts
    are the mean over the uniformly assigned contexts; the pooled truth is their ratio."""
    import dataclasses

    from simpert.sim._engine import expected_matrix, model_from_uns
    from simpert.sim._pseudobulk import design_from_obs

    a = sim.screen(rng=75, n_genes=50, n_perturbations=4, n_control_cells=40, cells_per_perturbation=30,
                   n_contexts=3, context_shared=0.3, escape_rate=0.0, library_sd=0.0)
    model, design = model_from_uns(a), design_from_obs(a.obs, a.uns["simpert"])
    o = a.obs
    args = (o.size_factor.to_numpy(), o.escaped.to_numpy(), o.knockdown.to_numpy())
    per = [expected_matrix(model, dataclasses.replace(design, context=np.full(a.n_obs, k)), *args) for k in range(3)]
    unknown = expected_matrix(model, dataclasses.replace(design, context=None), *args)
    np.testing.assert_allclose(unknown, np.mean(per, axis=0), rtol=1e-12)
    codes = o.perturbation.cat.codes.to_numpy()
    ctrl = unknown[codes == 0].mean(0)
    lfc = np.asarray(a.uns["simpert"]["truth"]["log2fc"])
    for j in range(4):  # no escapers: off the target every cell of p has the expected ratio
        rows = unknown[codes == j + 1]
        gap = np.abs(np.log2(rows.mean(0) / ctrl) - lfc[j])[np.arange(50) != model.target_index[j]]
        assert np.max(gap) < 1e-10


def test_contexts_change_no_other_draw():
    kw = dict(n_genes=80, n_perturbations=5, n_control_cells=60, cells_per_perturbation=30, n_contexts=3, rng=74)
    lo = sim.screen(**kw, context_shared=0.2)
    hi = sim.screen(**kw, context_shared=0.9)
    for col in ("perturbation", "guide", "context", "size_factor", "knockdown", "escaped"):
        np.testing.assert_array_equal(lo.obs[col].to_numpy(), hi.obs[col].to_numpy())
    ctrl = lo.obs.is_control.to_numpy()
    assert (_rows(lo, ctrl) != _rows(hi, ctrl)).nnz == 0  # controls carry no effect
    np.testing.assert_array_equal(sim.truth(lo).specific, sim.truth(hi).specific)
    np.testing.assert_array_equal(lo.uns["simpert"]["truth"]["context_offsets"],
                                  hi.uns["simpert"]["truth"]["context_offsets"])
    # one context: none of it, and the screen of the same seed without the parameter
    one = sim.screen(**dict(kw, n_contexts=1))
    base = sim.screen(**{k: v for k, v in kw.items() if k != "n_contexts"})
    assert "context" not in one.obs and (one.X != base.X).nnz == 0
    # a third context keeps the first two contexts' offsets and effects
    two = sim.screen(**dict(kw, n_contexts=2), context_shared=0.2)
    np.testing.assert_array_equal(np.asarray(two.uns["simpert"]["truth"]["context_effects"]),
                                  np.asarray(lo.uns["simpert"]["truth"]["context_effects"])[:2])


# --------------------------------------------------------------------------- scenario files


@pytest.mark.parametrize("name", NEW_SCENARIOS)
def test_scenario_file_runs_through_calibrate(name):
    path = SIMULATIONS / f"{name}.toml"
    sc = sp.calibrate.load_scenario(str(path))
    assert sc.name == name and sc.kind == "screen"
    params = sim.ScreenParams(**sc.params)
    assert params.n_genes <= 1000 and params.n_perturbations <= 40
    tiny = dict(sc.params, n_genes=80, n_perturbations=8, n_control_cells=60, cells_per_perturbation=12.0)
    res = sp.calibrate.calibrate(["pearson_delta", "mse"], [{"scenario": {"name": name}, "params": tiny}],
                                 n_replicates=1, rng=0, executor="serial")
    assert len(res.table) > 0 and np.isfinite(res.table["value"]).any()


def test_context_view_of_additive_doubles_has_no_interaction_even_for_a_target_at_gene_0():
    # additive doubles: in each context's own truth the double's effect is the sum of its
    # singles' effects without their own targets (each double's interaction is 0); seed 10
    # draws a single targeting gene 0 that takes part in two doubles (index 0 is a target too)
    a = sp.sim.screen(n_genes=20, n_perturbations=6, n_control_cells=10, cells_per_perturbation=4,
                      n_combinations=3, interaction="additive", n_contexts=2, context_shared=0.5,
                      p_effect=0.3, rng=10)
    tr = a.uns["simpert"]["truth"]
    pairs = np.asarray(tr["combination_pairs"]).reshape(-1, 2)
    assert (np.asarray(tr["target_index"])[pairs.ravel()] == 0).any()
    for context in ("c0", "c1"):
        t = sp.sim.context_view(a, context).uns["simpert"]["truth"]
        np.testing.assert_allclose(np.asarray(t["combination_interaction"]), 0.0, atol=1e-12)


def test_expected_counts_without_program_activity_average_over_it():
    # with the cells' program activity unknown (obs columns dropped), expected counts are the
    # average over activity a ~ N(0, program_sd^2): log2 mean + ln2 sd^2 sum(L^2) / 2 (the
    # log-normal mean); the average of the per-cell expectations over 4,000 control cells
    # agrees within 4.5 Monte Carlo SEs per gene
    a = sp.sim.screen(n_genes=40, n_perturbations=2, n_control_cells=4000, cells_per_perturbation=5,
                      library_sd=0.0, n_programs=2, program_sd=0.6, program_density=0.3, rng=3)
    ctrl = (a.obs["perturbation"] == "control").to_numpy()
    mu = sp.sim.expected_counts(a)[ctrl]
    b = a.copy()
    b.obs = b.obs.drop(columns=[c for c in b.obs.columns if c.startswith("program_")])
    mu0 = sp.sim.expected_counts(b)[ctrl]
    np.testing.assert_allclose(mu0, np.broadcast_to(mu0[0], mu0.shape), rtol=1e-12)
    se = mu.std(0, ddof=1) / np.sqrt(mu.shape[0])
    moved = se > 1e-9 * mu0[0]  # genes no program loads on are equal up to rounding
    np.testing.assert_allclose(mu.mean(0)[~moved], mu0[0][~moved], rtol=1e-9)
    z = (mu.mean(0) - mu0[0])[moved] / se[moved]
    assert moved.sum() >= 10 and np.max(np.abs(z)) < 4.5, z
