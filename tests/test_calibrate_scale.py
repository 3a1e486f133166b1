"""Calibration scenarios whose replicates are drawn as pseudobulk (genome-scale screens)."""

import numpy as np
import pandas as pd
import pytest

import simpert as sp
from simpert.calibrate import Scenario, load_scenario
from simpert.calibrate._pipeline import default_simulate

PARAMS = dict(n_genes=80, n_perturbations=10, n_control_cells=40, cells_per_perturbation=12.0,
              p_effect=0.2, effect_size=1.0)


def test_pseudobulk_replicate_sums_the_cells():
    sc = Scenario("pb", params=PARAMS, output="pseudobulk")
    ss = np.random.SeedSequence(5)
    pb = default_simulate(sc, rng=ss)
    cells = default_simulate(Scenario("c", params=PARAMS), rng=np.random.SeedSequence(5))
    want = sp.sim.pseudobulk(cells)
    np.testing.assert_array_equal(np.asarray(pb.X), np.asarray(want.X))
    assert list(pb.obs_names) == list(want.obs_names)


def test_calibrate_pseudobulk_scenario_serial_equals_dask():
    sc = Scenario("pb", params=PARAMS, output="pseudobulk")
    ms = ["pearson_delta", "mse", "pds_cosine"]
    a = sp.calibrate.calibrate(ms, [sc], n_replicates=2, rng=1, executor="serial")
    b = sp.calibrate.calibrate(ms, [sc], n_replicates=2, rng=1, executor="dask", n_jobs=2)
    pd.testing.assert_frame_equal(a.table.reset_index(drop=True), b.table.reset_index(drop=True))
    t = a.table
    # every metric is scored on the pseudobulk samples
    good = t.predictor.isin(["oracle", "technical_duplicate"])
    assert t.loc[good & (t.metric == "pearson_delta"), "value"].notna().all()
    assert set(t.metric) == set(ms)


def test_output_field_from_toml_and_validation(tmp_path):
    f = tmp_path / "big.toml"
    f.write_text('[scenario]\nname = "big"\nkind = "screen"\noutput = "pseudobulk"\n\n[params]\nn_genes = 50\n')
    assert load_scenario(str(f)).output == "pseudobulk"
    with pytest.raises(ValueError, match="'output'"):
        Scenario("x", output="zarr")
    with pytest.raises(ValueError, match="'output'"):
        Scenario("x", kind="noise_only", output="pseudobulk")


def test_genome_scale_scenario_file():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "simulations" / "genome_scale" / "genome_pseudobulk.toml"
    sc = load_scenario(str(path))
    assert sc.output == "pseudobulk" and "genome_pseudobulk" not in sp.calibrate.list_scenarios()
    p = sp.sim.ScreenParams(**sc.params)
    assert p.n_control_cells + p.n_perturbations * p.cells_per_perturbation == 2_500_000
    # a small copy of it runs through the calibration as the full one would
    small = Scenario("g", params=dict(sc.params, n_genes=60, n_perturbations=12, unmeasured_targets=2,
                                      n_control_cells=30, cells_per_perturbation=8.0), output="pseudobulk")
    t = sp.calibrate.calibrate(["mse"], [small], n_replicates=1, rng=0, executor="serial").table
    assert t.loc[t.predictor == "oracle", "value"].notna().all()
