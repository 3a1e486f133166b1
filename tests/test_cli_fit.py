"""``simpert fit``: simulation parameters fitted to a screen, written as a scenario file."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from simpert.cli import app

SETS = ["--set", "n_genes=60", "--set", "n_perturbations=6", "--set", "n_control_cells=80",
        "--set", "cells_per_perturbation=20"]


@pytest.fixture(scope="module")
def screen_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "screen"
    res = CliRunner().invoke(app, ["--quiet", "simulate", "sparse_strong", "-o", str(out),
                                   "--format", "mtx", "--seed", "3", *SETS])
    assert res.exit_code == 0, res.stderr
    return out


def test_fit_writes_a_scenario_that_simulate_accepts(screen_dir, tmp_path):
    out = tmp_path / "fitted.json"
    report = tmp_path / "report.json"
    res = CliRunner().invoke(app, ["--quiet", "fit", str(screen_dir), "-o", str(out),
                                   "--report", str(report), "--name", "mine"])
    assert res.exit_code == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["scenario"]["name"] == "mine" and data["scenario"]["kind"] == "screen"
    p = data["params"]
    assert p["n_genes"] == 60 and p["n_perturbations"] == 6 and p["n_control_cells"] == 80
    assert len(p["gene_means"]) == 60
    rep = json.loads(report.read_text())
    assert len(rep["genes"]) == 60 and len(rep["gene_means"]) == 60
    assert {row["quantity"] for row in rep["summary"]} >= {"n_genes", "p_effect", "library_sd"}
    sim_out = tmp_path / "again"
    res = CliRunner().invoke(app, ["--quiet", "simulate", str(out), "-o", str(sim_out), "--format", "mtx"])
    assert res.exit_code == 0, res.stderr
    assert (sim_out / "counts.mtx").is_file()


def test_fit_errors_name_the_option(screen_dir, tmp_path):
    res = CliRunner().invoke(app, ["fit", str(screen_dir), "-o", str(tmp_path / "x.toml")])
    assert res.exit_code == 2 and "option '--output' must end in .json" in res.stderr
    res = CliRunner().invoke(app, ["fit", str(screen_dir), "-o", str(tmp_path / "x.json"), "--min-mean", "0"])
    assert res.exit_code == 2 and "--min-mean" in res.stderr
    res = CliRunner().invoke(app, ["fit", str(tmp_path / "missing"), "-o", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_an_mtx_dir_with_empty_type_records_reads(screen_dir, tmp_path):
    import shutil

    from simpert.cli._mtx import read_mtx_dir

    d = tmp_path / "copy"
    shutil.copytree(screen_dir, d)
    meta = json.loads((d / "meta.json").read_text())
    meta["var_types"] = []
    meta["truth_files"] = []
    (d / "meta.json").write_text(json.dumps(meta))
    a = read_mtx_dir(d)
    assert a.n_vars == 60
    meta["var_types"] = ["x"]
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="var_types"):
        read_mtx_dir(d)


def test_params_prints_every_field_and_rejects_unknown_ones():
    res = CliRunner().invoke(app, ["params", "sparse_strong", "--set", "n_genes=50"])
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["kind"] == "screen" and data["params"]["n_genes"] == 50
    assert "n_replicates" in data["params"] and "control_label" in data["params"]
    res = CliRunner().invoke(app, ["params", "sparse_strong", "--set", "bogus=1"])
    assert res.exit_code == 2 and "unknown parameter(s) 'bogus'" in res.stderr
    assert "n_replicates" in res.stderr


def test_convert_between_h5ad_and_mtx_directory(screen_dir, tmp_path):
    import anndata as ad
    import numpy as np

    from simpert.cli._mtx import read_mtx_dir

    h5 = tmp_path / "screen.h5ad"
    res = CliRunner().invoke(app, ["convert", str(screen_dir), str(h5)])
    assert res.exit_code == 0, res.stderr
    a = ad.read_h5ad(h5)
    back = tmp_path / "back"
    res = CliRunner().invoke(app, ["convert", str(h5), str(back)])
    assert res.exit_code == 0, res.stderr
    b = read_mtx_dir(back)
    orig = read_mtx_dir(screen_dir)
    assert a.shape == b.shape == orig.shape
    assert np.array_equal(b.X.toarray(), orig.X.toarray())
    assert list(b.obs["perturbation"].cat.categories) == list(orig.obs["perturbation"].cat.categories)
    np.testing.assert_allclose(b.uns["simpert"]["truth"]["log2fc"], orig.uns["simpert"]["truth"]["log2fc"])
    res = CliRunner().invoke(app, ["convert", str(screen_dir), str(tmp_path / "x.txt")])
    assert res.exit_code == 2 and "must end in .h5ad" in res.stderr


def test_replicate_truth_is_written_as_a_matrix_whatever_its_shape(tmp_path):
    import numpy as np

    from simpert.cli._mtx import read_mtx_dir

    out = tmp_path / "two"
    res = CliRunner().invoke(app, ["--quiet", "simulate", "sparse_strong", "-o", str(out), "--format", "mtx",
                                   "--set", "n_genes=20", "--set", "n_perturbations=2",
                                   "--set", "n_replicates=2"])
    assert res.exit_code == 0, res.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["truth_files"]["replicate_log2fc"] == ["replicate_log2fc.csv", "matrix"]
    truth = read_mtx_dir(out).uns["simpert"]["truth"]
    assert np.asarray(truth["replicate_log2fc"]).shape == (2, 20)
