"""The ``simpert`` command line: happy paths on tiny screens and the bad-input behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from simpert.cli._mtx import read_mtx_dir
from simpert.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

TINY = """
[scenario]
name = "tiny"
kind = "screen"
description = "a tiny screen for tests"
test_fraction = 0.5

[params]
n_genes = 60
n_perturbations = 8
n_control_cells = 60
cells_per_perturbation = 15
p_effect = 0.2
effect_size = 1.5
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def invoke(*args):
    return runner.invoke(app, ["--quiet", *map(str, args)])


def assert_user_error(res, *fragments):
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output
    err = res.stderr
    assert err.startswith("error: "), err
    for frag in fragments:
        assert frag in err, (frag, err)


# ------------------------------------------------------------------ help


@pytest.mark.parametrize("command", ["simulate", "de", "score", "calibrate", "figures", "scenarios", "metrics"])
def test_help_explains_options(command):
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output
    if command in ("simulate", "de", "score", "calibrate"):
        assert "--output" in res.output


def test_no_arguments_prints_help():
    res = runner.invoke(app, [])
    assert "Usage" in res.output
    assert "simulate" in res.output


def test_version():
    res = invoke("--version")
    assert res.exit_code == 0 and res.stdout.startswith("simpert ")


# ------------------------------------------------------------------ listing


def test_scenarios_lists_the_shipped_files():
    res = invoke("scenarios", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    names = {r["name"] for r in rows}
    files = {p.stem for p in (ROOT / "simulations").glob("*.toml")}
    assert files and files <= names
    assert {"name", "kind", "description", "source"} <= set(rows[0])
    text = invoke("scenarios")
    assert "noise_only" in text.stdout


def test_metrics_lists_the_registry():
    from simpert import metrics

    res = invoke("metrics", "--json")
    assert res.exit_code == 0, res.output
    assert {r["name"] for r in json.loads(res.stdout)} == set(metrics.registry)


# ------------------------------------------------------------------ simulate


def test_simulate_h5ad_and_mtx_agree_and_are_seeded(tmp_path, tiny):
    res = invoke("simulate", tiny, "-o", tmp_path / "a.h5ad", "--seed", 3)
    assert res.exit_code == 0, res.output
    res = invoke("simulate", tiny, "-o", tmp_path / "a_dir", "--seed", 3, "--format", "mtx")
    assert res.exit_code == 0, res.output
    a = ad.read_h5ad(tmp_path / "a.h5ad")
    b = read_mtx_dir(tmp_path / "a_dir")
    assert (a.X != b.X).nnz == 0
    assert a.n_vars == 60
    from simpert import sim
    from simpert.calibrate import load_scenario
    from simpert.calibrate._pipeline import default_simulate

    # the command line draws exactly what the calibration harness draws for that seed
    direct = default_simulate(load_scenario(tiny), rng=np.random.SeedSequence(3))
    assert (direct.X != a.X).nnz == 0
    ta, tb = sim.truth(a), sim.truth(b)
    pd.testing.assert_frame_equal(ta.log2fc, tb.log2fc)
    pd.testing.assert_series_equal(ta.targets, tb.targets, check_categorical=False)
    res = invoke("simulate", tiny, "-o", tmp_path / "c.h5ad", "--seed", 4)
    c = ad.read_h5ad(tmp_path / "c.h5ad")
    assert c.X.shape != a.X.shape or (c.X != a.X).nnz > 0


def test_simulate_overrides_and_pseudobulk(tmp_path, tiny):
    res = invoke("simulate", tiny, "-o", tmp_path / "pb", "--pseudobulk",
                 "--set", "n_genes=25", "--set", "n_replicates=2")
    assert res.exit_code == 0, res.output
    pb = read_mtx_dir(tmp_path / "pb")
    assert pb.n_vars == 25
    assert isinstance(pb.X, np.ndarray) and pb.X.dtype.kind == "i"
    assert pb.n_obs == 9 * 2  # control + 8 perturbations, 2 replicates each
    meta = json.loads((tmp_path / "pb" / "meta.json").read_text())
    assert meta["simpert"]["params"]["n_genes"] == 25


def test_simulate_named_scenario(tmp_path):
    res = invoke("simulate", "sparse_strong", "-o", tmp_path / "s.h5ad",
                 "--set", "n_genes=30", "--set", "n_perturbations=4")
    assert res.exit_code == 0, res.output
    assert ad.read_h5ad(tmp_path / "s.h5ad").n_vars == 30


def test_simulate_bad_input(tmp_path, tiny):
    assert_user_error(invoke("simulate", "no_such_scenario", "-o", tmp_path / "x.h5ad"),
                      "unknown scenario 'no_such_scenario'", "noise_only")
    assert_user_error(invoke("simulate", "sparse_strng", "-o", tmp_path / "x.h5ad"),
                      "did you mean sparse_strong")
    assert_user_error(invoke("simulate", tmp_path / "missing.toml", "-o", tmp_path / "x.h5ad"),
                      "does not exist")
    assert_user_error(invoke("simulate", tiny, "-o", tmp_path / "x.csv", "--format", "h5ad"),
                      "must end in .h5ad")
    assert_user_error(invoke("simulate", tiny, "-o", tmp_path / "x.h5ad", "--set", "n_genes=-5"),
                      "n_genes")
    assert_user_error(invoke("simulate", tiny, "-o", tmp_path / "x.h5ad", "--set", "oops"),
                      "key=value")
    assert not (tmp_path / "x.h5ad").exists()
    res = invoke("simulate", tiny, "-o", tmp_path / "x.h5ad", "--seed", -1)
    assert res.exit_code == 2  # click's own range check


# ------------------------------------------------------------------ de


def test_de_missing_and_wrong_inputs(tmp_path):
    assert_user_error(invoke("de", tmp_path / "nope.h5ad", "-o", tmp_path / "t.csv"), "does not exist")
    (tmp_path / "empty").mkdir()
    assert_user_error(invoke("de", tmp_path / "empty", "-o", tmp_path / "t.csv"), "no counts.mtx")
    (tmp_path / "x.txt").write_text("hello")
    assert_user_error(invoke("de", tmp_path / "x.txt", "-o", tmp_path / "t.csv"), ".h5ad")
    (tmp_path / "bad.h5ad").write_text("not hdf5")
    assert_user_error(invoke("de", tmp_path / "bad.h5ad", "-o", tmp_path / "t.csv"), "not a readable")
    assert_user_error(invoke("de", tmp_path / "bad.h5ad", "-o", tmp_path / "t.xlsx"), ".parquet")
    res = invoke("de", tmp_path / "bad.h5ad", "-o", tmp_path / "t.csv", "--backend", "edger")
    assert res.exit_code == 2 and "Traceback" not in res.output


# ------------------------------------------------------------------ score / calibrate errors


def test_unknown_metric_is_a_user_error(tmp_path, tiny):
    assert_user_error(invoke("score", "--scenario", tiny, "--metric", "pearson_delt", "-o", tmp_path / "s.csv"),
                      "unknown metric 'pearson_delt'", "pearson_delta")
    assert_user_error(invoke("calibrate", "--metric", "no_such_metric", "--scenario", tiny, "-o", tmp_path / "c"),
                      "unknown metric 'no_such_metric'")
    assert_user_error(invoke("calibrate", "--metric", "no_such_module_xyz:f", "--scenario", tiny, "-o", tmp_path / "c"),
                      "cannot be imported")
    py = tmp_path / "m.py"
    py.write_text("def other(inp):\n    return 0\n")
    assert_user_error(invoke("calibrate", "--metric", f"{py}:mine", "--scenario", tiny, "-o", tmp_path / "c"),
                      "has no function 'mine'")
    assert not (tmp_path / "c").exists()


def test_calibrate_unknown_scenario_and_missing_r_file(tmp_path):
    assert_user_error(invoke("calibrate", "--metric", "mse", "--scenario", "nope", "-o", tmp_path / "c"),
                      "unknown scenario 'nope'")
    assert_user_error(invoke("calibrate", "--metric", f"{tmp_path / 'absent.R'}:f", "--scenario", "noise_only",
                             "-o", tmp_path / "c"), "does not exist")


def test_r_file_without_the_named_function(tmp_path, tiny, rscript):
    rfile = tmp_path / "metric.R"
    rfile.write_text("other_metric <- function(pred, real, pc, rc) rowMeans(abs(pred - real))\n")
    assert_user_error(invoke("calibrate", "--metric", f"{rfile}:my_metric", "--scenario", tiny, "-o", tmp_path / "c"),
                      "my_metric")
    rfile.write_text("my_metric <- 3\n")
    assert_user_error(invoke("calibrate", "--metric", f"{rfile}:my_metric", "--scenario", tiny, "-o", tmp_path / "c"),
                      "R function")
    rfile.write_text("my_metric <- function(pred, real {\n")
    assert_user_error(invoke("calibrate", "--metric", f"{rfile}:my_metric", "--scenario", tiny, "-o", tmp_path / "c"),
                      "valid R code")


def test_real_exit_codes_in_a_subprocess(tmp_path):
    """The installed entry point: exit status 2 and one error line, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "simpert.cli", "de", str(tmp_path / "missing.h5ad"),
                           "-o", str(tmp_path / "t.csv")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "simpert.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "calibrate" in proc.stdout


def test_figures_runs_paper_figures_module(monkeypatch):
    calls = []

    def fake_call(cmd, cwd, env):
        calls.append((cmd, cwd))
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    res = invoke("figures", "--fast", "--jobs", 2)
    assert res.exit_code == 0, res.output
    cmd, cwd = calls[0]
    assert cmd[1:] == ["-m", "paper_figures", "--fast", "--jobs", "2"]
    assert Path(cwd) == ROOT


# ------------------------------------------------------------------ happy paths: de, score, calibrate


def test_de_table_equals_the_library_call(tmp_path, tiny):
    from simpert import de

    # one replicate per perturbation cannot be fitted: a clean error
    assert invoke("simulate", tiny, "-o", tmp_path / "one.h5ad").exit_code == 0
    assert_user_error(invoke("de", tmp_path / "one.h5ad", "-o", tmp_path / "x.csv"), "replicates")
    two = ("--seed", 1, "--set", "n_replicates=2")
    assert invoke("simulate", tiny, "-o", tmp_path / "s.h5ad", *two).exit_code == 0
    assert invoke("simulate", tiny, "-o", tmp_path / "s_dir", *two).exit_code == 0
    res = invoke("de", tmp_path / "s.h5ad", "-o", tmp_path / "de.parquet", "--shrink", "normal")
    assert res.exit_code == 0, res.output
    res = invoke("de", tmp_path / "s_dir", "-o", tmp_path / "de.csv")
    assert res.exit_code == 0, res.output
    direct = de.deseq(ad.read_h5ad(tmp_path / "s.h5ad"), control="control", backend="native",
                      shrink="normal").table
    got = pd.read_parquet(tmp_path / "de.parquet")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), direct.reset_index(drop=True),
                                  check_categorical=False, check_dtype=False)
    from_dir = pd.read_csv(tmp_path / "de.csv")
    assert {"log2fc_shrunk"} & set(from_dir.columns) == set()
    np.testing.assert_allclose(from_dir["log2fc"].to_numpy(), direct["log2fc"].to_numpy(), rtol=1e-12, atol=1e-12)


def test_score_table(tmp_path, tiny):
    res = invoke("score", "--scenario", tiny, "-p", "oracle", "-p", "control", "-m", "mse",
                 "-m", "pearson_delta", "--seed", 2, "-o", tmp_path / "s.csv")
    assert res.exit_code == 0, res.output
    t = pd.read_csv(tmp_path / "s.csv")
    assert list(t.columns) == ["predictor", "perturbation", "metric", "value"]
    assert set(t["predictor"]) == {"oracle", "control"}
    assert t["perturbation"].nunique() == 4  # test_fraction 0.5 of 8
    mse = t[t["metric"] == "mse"].groupby("predictor")["value"].mean()
    assert mse["oracle"] < mse["control"]
    # the same seed from an h5ad file gives the same scores as from the scenario
    assert invoke("simulate", tiny, "-o", tmp_path / "x.h5ad", "--seed", 2).exit_code == 0
    res = invoke("score", "--input", tmp_path / "x.h5ad", "-p", "oracle", "-p", "control", "-m", "mse",
                 "-m", "pearson_delta", "--seed", 2, "-o", tmp_path / "s2.csv")
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(t, pd.read_csv(tmp_path / "s2.csv"))
    assert_user_error(invoke("score", "-o", tmp_path / "s.csv"), "exactly one of --scenario and --input")


def test_calibrate_outputs_and_python_metric(tmp_path, tiny):
    """A Python metric re-implementing 'mae' gives the built-in's values; files are complete."""
    mod = tmp_path / "mymetrics.py"
    mod.write_text(textwrap.dedent("""
        import numpy as np
        def my_mae(inp):
            return np.abs(np.asarray(inp.pred) - np.asarray(inp.real)).mean(axis=1)
    """))
    out = tmp_path / "cal"
    res = invoke("calibrate", "-m", "mae", "-m", f"{mod}:my_mae", "--lower-is-better", "--best", 0,
                 "-s", tiny, "-r", 2, "--seed", 5, "-e", "serial", "-o", out)
    assert res.exit_code == 0, res.output
    for name in ("table.csv", "summary.csv", "summary.json", "errors.csv", "card_mae.png", "card_my_mae.png"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "table.csv")
    wide = table.pivot_table(index=["scenario", "replicate", "predictor", "perturbation"],
                             columns="metric", values="value")
    np.testing.assert_allclose(wide["my_mae"], wide["mae"], rtol=1e-10, atol=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"] == ["mae", "my_mae"]
    assert summary["verdicts"]["my_mae"].startswith("my_mae: ")
    assert summary["n_replicates"] == 2
    # same seed, run as one library call: identical table
    from simpert import calibrate as cal
    from simpert.metrics import Metric

    import importlib.util
    spec = importlib.util.spec_from_file_location("mymetrics_direct", mod)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    direct = cal.calibrate(["mae", Metric("my_mae", m.my_mae, higher_is_better=False, best=0.0)], [str(tiny)],
                           n_replicates=2, rng=5, executor="serial", predictors=None)
    np.testing.assert_allclose(table["value"].to_numpy(), direct.table["value"].to_numpy(), rtol=1e-12)


def test_calibrate_r_metric(tmp_path, tiny, rscript):
    rfile = tmp_path / "metric.R"
    rfile.write_text("r_mae <- function(pred, real, pred_control, real_control) rowMeans(abs(pred - real))\n")
    out = tmp_path / "cal"
    res = invoke("calibrate", "-m", "mae", "-m", f"{rfile}:r_mae", "--lower-is-better", "--best", 0,
                 "-s", tiny, "-r", 1, "-e", "serial", "-p", "oracle", "-p", "mean", "--no-card", "-o", out)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "table.csv")
    wide = table.pivot_table(index=["predictor", "perturbation"], columns="metric", values="value")
    np.testing.assert_allclose(wide["r_mae"], wide["mae"], rtol=1e-10)
    assert not list(out.glob("*.png"))
