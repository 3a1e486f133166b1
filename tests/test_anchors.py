"""Regression anchors: fingerprints of seeded outputs of every subpackage, pinned across versions.

These are not tests of correctness (the other test files compare with R, the peers' code,
closed forms and Monte Carlo); they pin what a seed gives today so that any change to a
result, intended or not, is seen. A value that changes on purpose is regenerated with

    python tests/test_anchors.py --write

and the change is announced in CHANGELOG.md ("seeded values change").

Each case builds a small seeded result (a screen with every realism feature, a planted
screen, a comparison, a fit, every registered metric on fixed predictions, the DE engines'
tables, a calibration run, power and sample sizes) and reduces each array to a fingerprint:
its size, the number of NaNs, the exact sum (``math.fsum``), a weighted sum with fixed
irregular weights (changes that keep the sum are seen) and the sum of squares. Text columns
are reduced to a hash of their values in order.

Tolerance: relative 1e-6 (absolute 1e-9). The iterative fits (IRLS, dispersion and ash
optimisations, mixSQP) stop at relative tolerances of 1e-8 or finer, and another BLAS or
CPU reorders sums at the 1e-15 level; a difference above 1e-6 is a change of behaviour.
Integer counts come from numpy's Generator, whose streams numpy keeps stable.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simpert as sp

ANCHORS = Path(__file__).parent / "data" / "anchors.json"
REL, ABS = 1e-6, 1e-9


# --------------------------------------------------------------------------- fingerprints


def _fp_array(x) -> list:
    if hasattr(x, "toarray"):
        x = x.toarray()
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind in "USb":
        if a.dtype.kind == "b":
            return _fp_array(a.astype(float))
        return ["text", a.size, hashlib.sha1("\x1f".join(map(str, a.ravel())).encode()).hexdigest()[:16]]
    a = a.astype(float).ravel()
    nan = ~np.isfinite(a)
    y = np.where(nan, 0.0, a)
    w = 1.5 + np.cos(0.7 * np.arange(y.size))
    return [float(y.size), float(nan.sum()), math.fsum(y), math.fsum(y * w), math.fsum(y * y)]


def _fp(obj, prefix="") -> dict:
    """name -> fingerprint of every array-like in ``obj`` (nested dicts, frames, AnnData)."""
    out = {}
    if obj is None:
        return out
    if hasattr(obj, "obs") and hasattr(obj, "var") and hasattr(obj, "X"):
        out[prefix + "X"] = _fp_array(obj.X)
        for k in sorted(getattr(obj, "layers", {}).keys()):
            out[f"{prefix}layers.{k}"] = _fp_array(obj.layers[k])
        out.update(_fp(obj.obs, prefix + "obs."))
        out.update(_fp(obj.var, prefix + "var."))
        out[prefix + "obs_names"] = _fp_array(np.asarray(obj.obs_names))
        out[prefix + "var_names"] = _fp_array(np.asarray(obj.var_names))
        truth = obj.uns.get("simpert", {}).get("truth") if isinstance(obj.uns.get("simpert"), dict) else None
        out.update(_fp(truth, prefix + "truth."))
        return out
    if isinstance(obj, pd.DataFrame):
        out[prefix + "index"] = _fp_array(np.asarray([str(i) for i in obj.index]))
        for c in obj.columns:
            col = obj[c]
            vals = col.to_numpy() if pd.api.types.is_numeric_dtype(col) else col.astype(str).to_numpy()
            out[f"{prefix}{c}"] = _fp_array(vals)
        return out
    if isinstance(obj, pd.Series):
        return _fp(obj.to_frame(), prefix)
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            v = obj[k]
            if isinstance(v, (dict, pd.DataFrame, pd.Series)) or hasattr(v, "obs"):
                out.update(_fp(v, f"{prefix}{k}."))
            elif isinstance(v, (str, bytes)):
                out[prefix + str(k)] = _fp_array(np.asarray([v]))
            elif v is None:
                continue
            else:
                try:
                    out[prefix + str(k)] = _fp_array(v)
                except (TypeError, ValueError):
                    out[prefix + str(k)] = _fp_array(np.asarray([str(v)]))
        return out
    out[prefix.rstrip(".") or "value"] = _fp_array(obj)
    return out


# --------------------------------------------------------------------------- cases


def _features_screen():
    return sp.sim.screen(n_genes=40, n_perturbations=8, n_control_cells=30, cells_per_perturbation=8,
                         n_replicates=2, escape_rate=0.15, systematic_strength=0.5, dose_response="hill",
                         n_programs=2, program_shift_sd=0.3, n_batches=2, batch_sd=0.2,
                         multiplet_rate=0.1, no_guide_rate=0.05, n_combinations=3, interaction="mixed",
                         n_contexts=2, context_shared=0.5, rng=7)


def _plain_screen(**kw):
    base = dict(n_genes=60, n_perturbations=8, n_control_cells=40, cells_per_perturbation=12,
                n_replicates=2, p_effect=0.2, systematic_strength=0.5, rng=11)
    return sp.sim.screen(**{**base, **kw})


def case_sim_screen_features():
    a = _features_screen()
    c0 = sp.sim.context_view(a, "c0")
    return {"screen": a, "context_c0": c0, "pseudobulk": sp.sim.pseudobulk(a)}


def case_sim_screen_pseudobulk_output():
    a = sp.sim.screen(n_genes=30, n_perturbations=5, n_control_cells=20, cells_per_perturbation=6,
                      n_replicates=2, n_batches=2, output="pseudobulk", rng=3)
    return {"pb": a}


def case_sim_crispra_and_ko():
    return {"crispra": sp.sim.screen(n_genes=25, n_perturbations=4, n_control_cells=10, cells_per_perturbation=5,
                                     modality="crispra", dispersion_sd=0.3, unmeasured_targets=1, rng=5),
            "ko": sp.sim.screen(n_genes=25, n_perturbations=4, n_control_cells=10, cells_per_perturbation=5,
                                modality="ko", rng=5)}


def case_sim_plant():
    controls = sp.sim.screen(n_genes=50, n_perturbations=1, n_control_cells=400, cells_per_perturbation=3,
                             rng=13)
    controls = controls[controls.obs["perturbation"] == "control"].copy()
    planted = sp.sim.plant(controls, n_perturbations=6, cells_per_perturbation=20, n_control_cells=60,
                           duplicate=True, p_effect=0.2, systematic_strength=0.5, rng=4)
    return {"planted": planted}


def case_sim_compare_and_fit():
    a = _plain_screen()
    b = _plain_screen(rng=12, library_sd=0.4)
    cmp = sp.sim.compare(a, b, n_top_genes=30)
    fit = sp.sim.fit_screen(a)
    table = cmp.table if isinstance(getattr(cmp, "table", None), pd.DataFrame) else cmp.summary()
    params = {k: v for k, v in fit.params.to_dict().items() if not isinstance(v, (list, tuple, np.ndarray))
              or np.asarray(v).size < 500}
    return {"compare": pd.DataFrame(table) if not isinstance(table, pd.DataFrame) else table,
            "params": params}


def case_sim_ko_hill_multiplets():
    """KO with a Hill dose response, multiplets, guide-less cells, three guides and replicates,
    an unmeasured target and program shifts."""
    a = sp.sim.screen(n_genes=30, n_perturbations=6, n_control_cells=20, cells_per_perturbation=7,
                      modality="ko", dose_response="hill", hill_coefficient=1.5, hill_half=0.4,
                      multiplet_rate=0.25, no_guide_rate=0.1, n_guides=3, n_replicates=3,
                      unmeasured_targets=1, n_programs=1, program_shift_sd=0.4, p_effect=0.3, rng=17)
    return {"screen": a, "pseudobulk": sp.sim.pseudobulk(a)}


def case_sim_crispra_hill_combinations():
    """CRISPRa with a Hill dose response, synergistic doubles, contexts sharing little and
    three batches."""
    a = sp.sim.screen(n_genes=30, n_perturbations=5, n_control_cells=20, cells_per_perturbation=6,
                      modality="crispra", activation_fold=3.0, dose_response="hill", n_combinations=4,
                      interaction="synergistic", interaction_strength=0.8, n_contexts=2, context_shared=0.3,
                      n_batches=3, batch_sd=0.3, p_effect=0.3, rng=19)
    return {"screen": a, "context_c1": sp.sim.context_view(a, "c1")}


def case_sim_fixed_design():
    """Fixed cell counts, given gene means and shared direction, one guide, epistatic and
    buffering doubles, a cell-count floor."""
    G = 24
    means = tuple(float(x) for x in np.geomspace(0.2, 40.0, G))
    direction = tuple(float(x) for x in np.sin(np.arange(G)))
    out = {}
    for kind in ("epistatic", "buffering"):
        out[kind] = sp.sim.screen(n_genes=G, n_perturbations=4, n_control_cells=12, cells_per_perturbation=5,
                                  cell_count_dispersion=0.0, min_cells=5, gene_means=means,
                                  systematic_direction=direction, systematic_strength=0.6, n_guides=1,
                                  n_combinations=2, interaction=kind, p_effect=0.25, rng=23)
    out["dispersed_counts"] = sp.sim.screen(n_genes=G, n_perturbations=6, n_control_cells=5,
                                            cells_per_perturbation=4, cell_count_dispersion=2.0, min_cells=2,
                                            rng=29)
    return out


def case_sim_networks():
    net = sp.sim.erdos_renyi(8, 0.35, rng=1)
    v1 = sp.sim.var_network(net, output="counts", n_samples=3, n_controls=3, rng=2)
    v2 = sp.sim.var_network(net, input="initial", steps=3, n_samples=2, n_controls=2, rng=2)
    n = sp.sim.noise_only(n=12, n_genes=6, n_train=6, noise="nb", rng=3)
    v3 = sp.sim.var_network(net, steps=None, noise_sd=0.2, n_samples=2, n_controls=2, rng=4)
    return {"var_counts": v1, "var_initial": v2, "noise_nb": n, "var_steady_noisy": v3}


def _split_preds(a, rng=0):
    split = sp.predict.split(a, test_fraction=0.5, rng=rng)
    preds = sp.predict.make(a, split, ["mean", "control", "oracle", "technical_duplicate"], rng=rng, cells=True)
    return split, preds


def case_metrics_every_registered():
    a = _plain_screen(n_perturbations=10)
    split, preds = _split_preds(a)
    # the package's own metrics (another test may register one of its own)
    names = [n for n in sp.metrics.list_metrics().index
             if getattr(sp.metrics.get(n).fn, "__module__", "").startswith("simpert.")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = sp.metrics.score(preds, a, split, metrics=names)
    t = t.sort_values(["metric", "predictor", "perturbation"] if "predictor" in t.columns else list(t.columns[:3]))
    out = {}
    for m, g in t.groupby("metric", sort=True):
        out[m] = g["value"].to_numpy()
    out["errors"] = np.asarray(sorted(f"{e['metric']}:{e.get('predictor', '')}" for e in t.attrs.get("errors", [])))
    return out


def case_metrics_profiles():
    a = _plain_screen(n_perturbations=10, rng=21, p_effect=0.3, effect_size=2.0, cells_per_perturbation=30)
    pred = sp.sim.redraw(a, rng=5)
    out = {}
    for profile in sorted(sp.metrics.EVALUATION_PROFILES):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sp.metrics.evaluate(pred, a, profile=profile, n_boot=50, rng=0)
        out[profile] = {"per_perturbation": res.per_perturbation, "aggregate": res.aggregate,
                        "errors": np.asarray(sorted(map(str, res.errors)))}
    return out


def case_metrics_options():
    a = _plain_screen(n_perturbations=10, rng=23)
    split, preds = _split_preds(a, rng=2)
    names = ["pearson_delta", "mse_delta", "discrimination_score_l1", "perturbench_rank", "pereggrn_pearson",
             "systema_pearson_delta", "pds_cosine", "overlap_at_N"]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for target in ("include", "exclude", "pairwise", "reveal"):
            t = sp.metrics.score(preds, a, split, metrics=names, target=target)
            out[f"target_{target}"] = t.sort_values(["metric", "predictor", "perturbation"]).reset_index(drop=True)
        for reference in ("centroid", "centroid_all"):
            t = sp.metrics.score(preds, a, split, metrics=names[:3], reference=reference)
            out[f"reference_{reference}"] = t.sort_values(["metric", "predictor", "perturbation"]).reset_index(drop=True)
    return out


def case_de_ash_variants():
    rng = np.random.default_rng(17)
    se = rng.uniform(0.2, 1.0, 200)
    bhat = np.where(rng.random(200) < 0.3, rng.normal(0, 2, 200), 0.0) + rng.normal(0, se)
    out = {}
    for comp in ("normal", "uniform", "halfuniform"):
        for pm in (True, False):
            r = sp.de.ash(bhat, se, mixcompdist=comp, pointmass=pm)
            out[f"{comp}_{pm}"] = {k: v for k, v in vars(r).items() if isinstance(v, (np.ndarray, float, int)) and k != "n_iter"}
    return out


def case_de_engines():
    a = _plain_screen(n_perturbations=4, cells_per_perturbation=20, n_replicates=3, n_batches=2, rng=31)
    pb = sp.sim.pseudobulk(a, by=("perturbation", "replicate", "batch"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        native = sp.de.deseq(pb, design="~ batch + perturbation", shrink="normal")
        ash = sp.de.deseq(pb, shrink="ash", fit_type="local")
        mean_trend = sp.de.deseq(pb, fit_type="mean", cooks=False, independent_filter=False)
        wil = sp.de.wilcoxon(a)
    return {"native": native.table, "native_sf": native.size_factors, "native_disp": native.dispersions,
            "ash": ash.table, "mean_trend": mean_trend.table, "wilcoxon": getattr(wil, "table", wil)}


def case_calibrate_run():
    scen = _tiny_scenario()
    planted = sp.calibrate.load_scenario({
        "scenario": {"name": "tiny_planted", "kind": "planted", "test_fraction": 0.5},
        "params": {"controls": "simulated", "n_perturbations": 6, "cells_per_perturbation": 10.0,
                   "n_control_cells": 30, "p_effect": 0.2, "systematic_strength": 0.3,
                   "stand_in": {"n_genes": 40, "n_control_cells": 200}}})
    network = sp.calibrate.load_scenario({
        "scenario": {"name": "tiny_var", "kind": "var_network", "test_fraction": 0.5},
        "params": {"n_perturbed": 6, "n_samples": 6, "n_controls": 20, "spectral_radius": 0.6,
                   "output": "counts", "network": {"model": "erdos_renyi", "n_genes": 30, "p": 0.1}}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = sp.calibrate.calibrate(["mse", "pearson_delta", "discrimination_score_l1", "de_sig_genes_recall"],
                                     [scen, planted, network], n_replicates=2, rng=9, executor="serial")
    s = cal.summary()
    return {"table": cal.table, "summary": s.table if hasattr(s, "table") else s,
            "errors": cal.errors}


def _tiny_scenario():
    return sp.calibrate.load_scenario({"scenario": {"name": "tiny", "kind": "screen", "test_fraction": 0.5},
                                       "params": dict(n_genes=40, n_perturbations=6, n_control_cells=30,
                                                      cells_per_perturbation=10, p_effect=0.2)})


def case_calibrate_power():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = sp.calibrate.pilot_differences(["mse", "pearson_delta"], _tiny_scenario(),
                                           [("technical_duplicate", "mean"), ("mean", "control")],
                                           cells_per_perturbation=[5.0, 10.0], n_pilot=2, n_pilot_test=8,
                                           n_train=6, rng=2)
        sizes = sp.calibrate.sample_sizes(d, n_resamples=300)
    return {"differences": d, "sizes": sizes,
            "t_power": np.asarray([sp.calibrate.t_test_power(n, 0.5, 1.2) for n in (3, 10, 40)])}


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}


def _compute(name) -> dict:
    return _fp(CASES[name]())


def _close(a, b) -> bool:
    if a[0] == "text" or b[0] == "text":
        return a == b
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=REL, abs_tol=ABS) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def stored():
    return json.loads(ANCHORS.read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_seeded_results_match_their_anchor(name, stored):
    want = stored[name]
    got = _compute(name)
    assert sorted(got) == sorted(want), f"{name}: fields differ: {sorted(set(got) ^ set(want))}"
    bad = [k for k in want if not _close(got[k], want[k])]
    assert not bad, f"{name}: changed fields {bad[:8]} (first: {bad[0]}: {got[bad[0]]} vs {want[bad[0]]})"


def test_every_case_is_stored(stored):
    assert sorted(stored) == sorted(CASES)


def test_fingerprint_sees_a_change_that_keeps_the_sum():
    x = np.arange(10.0)
    y = x.copy()
    y[[2, 7]] = y[[7, 2]]
    assert _fp_array(x)[2] == _fp_array(y)[2] and not _close(_fp_array(x), _fp_array(y))


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/test_anchors.py --write  (regenerates tests/data/anchors.json)")
    ANCHORS.parent.mkdir(exist_ok=True)
    data = {name: _compute(name) for name in sorted(CASES)}
    tmp = ANCHORS.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    tmp.replace(ANCHORS)
    print(f"wrote {ANCHORS} ({len(data)} cases)")
