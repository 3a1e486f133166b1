"""Nothing lost, nothing wrong in silence: outputs, failures, overflow, signals, nuisances."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import simpert as sp
from simpert import _io
from simpert.cli import app
from simpert.sim import _engine

ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# --------------------------------------------------------------------------- outputs


def test_mtx_output_replaces_its_own_earlier_output_only(tmp_path):
    out = tmp_path / "screen"
    assert _run("-q", "simulate", "noise_only", "-o", out).exit_code == 0
    (out / "extra.txt").write_text("from an earlier run")
    # an earlier simpert output of the same kind is replaced as a whole
    assert _run("-q", "simulate", "noise_only", "-o", out, "--seed", "1").exit_code == 0
    assert not (out / "extra.txt").exists() and (out / "counts.mtx").is_file()
    # a user's directory is refused ... unless --force
    user = tmp_path / "user"
    user.mkdir()
    (user / "keep.txt").write_text("mine")
    res = _run("-q", "simulate", "noise_only", "-o", user)
    assert res.exit_code == 2 and "--force" in res.output
    assert (user / "keep.txt").read_text() == "mine"
    assert _run("-q", "simulate", "noise_only", "-o", user, "--force").exit_code == 0
    assert not (user / "keep.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_output_checked_before_any_work(tmp_path, monkeypatch):
    from simpert.cli import _inputs

    calls = []
    monkeypatch.setattr(_inputs, "simulate_scenario", lambda *a, **k: calls.append(1))
    (tmp_path / "file").write_text("x")
    for target in (tmp_path / "file" / "s.h5ad", tmp_path / "missing" / "s.h5ad"):
        res = _run("simulate", "noise_only", "-o", target)
        assert res.exit_code == 2, res.output
    res = _run("score", "-s", "noise_only", "-o", tmp_path / "file" / "s.csv")
    assert res.exit_code == 2
    assert calls == []


def test_calibration_directory_holds_one_run_only(tmp_path):
    out = tmp_path / "cal"
    first = _run("-q", "calibrate", "-m", "mse", "-m", "pearson_delta", "-s", "noise_only", "-r", "1",
                 "-e", "serial", "-o", out)
    assert first.exit_code == 0, first.output
    assert (out / "card_pearson_delta.png").is_file()
    second = _run("-q", "calibrate", "-m", "mse", "-s", "noise_only", "-r", "1", "-e", "serial", "-o", out)
    assert second.exit_code == 0, second.output
    assert not (out / "card_pearson_delta.png").exists()
    assert (out / "card_mse.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "t.csv"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".t.csv.simpert-tmp-{dead.pid}-abcd.csv"
    stale.write_text("half")
    mine = tmp_path / f".t.csv.simpert-tmp-{os.getpid()}-ef01.csv"
    mine.write_text("in progress")
    _io.write_text_atomic(target, "done")
    assert target.read_text() == "done"
    assert not stale.exists() and mine.exists()  # a live process's temporary is left alone


def test_sigterm_during_a_write_leaves_no_temporary(tmp_path):
    """A slow write killed by SIGTERM: the handler unwinds and removes the temporary file."""
    code = (
        "import time, pathlib, sys\n"
        "from simpert import _io\n"
        "_io.install_signal_cleanup()\n"
        "with _io.atomic_path(sys.argv[1]) as tmp:\n"
        "    pathlib.Path(tmp).write_text('partial')\n"
        "    print('WRITING', flush=True)\n"
        "    time.sleep(60)\n"
    )
    target = tmp_path / "out.h5ad"
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "WRITING"
    assert [p for p in tmp_path.iterdir() if ".simpert-tmp-" in p.name]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_cli_simulate_leaves_nothing(tmp_path):
    out = tmp_path / "big.h5ad"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "simpert.cli", "simulate", "sparse_strong",
                             "--set", "n_control_cells=40000", "-o", str(out)], env=env,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # "simulating ... ...": the command is running
    assert first.startswith("simulating"), first
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode in (0, 128 + signal.SIGTERM), proc.returncode
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "big.h5ad"]
    assert leftovers == []


# --------------------------------------------------------------------------- failures kept apart


def _neg_mse(inp):
    return -((inp.pred - inp.real) ** 2).mean(axis=1)


def _boom(inp):
    raise RuntimeError("boom")


def test_one_failing_metric_keeps_the_others():
    adata = sp.sim.screen(n_genes=50, n_perturbations=6, cells_per_perturbation=10, n_control_cells=30, rng=0)
    split = sp.predict.split(adata, test_fraction=0.5, rng=0)
    preds = sp.predict.make(adata, split, ["mean", "control"], rng=0)
    with pytest.warns(UserWarning, match="_boom on mean: RuntimeError: boom"):
        table = sp.metrics.score(preds, adata, split, metrics=["mse", _boom, _neg_mse])
    assert set(table["metric"]) == {"mse", "_neg_mse"}
    assert len(table) == 2 * 2 * len(split.test)
    errors = table.attrs["errors"]
    assert {e["metric"] for e in errors} == {"_boom"} and len(errors) == 2
    expected = sp.metrics.score(preds, adata, split, metrics=["mse"])
    np.testing.assert_array_equal(table.loc[table.metric == "mse", "value"].to_numpy(), expected["value"].to_numpy())


def test_cli_score_keeps_other_metrics(tmp_path):
    (tmp_path / "m.py").write_text("def boom(inp):\n    raise RuntimeError('boom')\n")
    res = _run("-q", "score", "-s", "noise_only", "-m", "mse", "-m", f"{tmp_path}/m.py:boom",
               "-o", tmp_path / "s.csv")
    assert res.exit_code == 0, res.output
    assert "warning: metric boom failed" in res.output
    import pandas as pd

    assert set(pd.read_csv(tmp_path / "s.csv")["metric"]) == {"mse"}


def test_bad_scenario_among_good_ones_is_reported_not_fatal():
    bad = sp.calibrate.load_scenario({"scenario": {"name": "bad", "kind": "screen"},
                                      "params": {"n_genes": 10, "n_perturbations": 20}})
    res = sp.calibrate.calibrate(["mse"], ["noise_only", bad], n_replicates=2, rng=0, executor="serial")
    assert set(res.table["scenario"]) == {"noise_only"}
    row = res.errors.set_index("scenario").loc["bad"]
    assert row["n_failed"] == 2 and "'n_perturbations'" in row["message"]


@pytest.mark.parametrize("executor", ["joblib", "dask"])
def test_metric_from_a_file_works_in_worker_processes(tmp_path, executor):
    (tmp_path / "user_metric.py").write_text(
        "def neg_mse(inp):\n    return -((inp.pred - inp.real) ** 2).mean(axis=1)\n")
    from simpert.cli._inputs import resolve_metric

    metric = resolve_metric(f"{tmp_path}/user_metric.py:neg_mse")
    kw = dict(n_replicates=2, rng=0, predictors=["oracle", "mean"])
    serial = sp.calibrate.calibrate([metric, "mse"], ["noise_only"], executor="serial", **kw)
    par = sp.calibrate.calibrate([metric, "mse"], ["noise_only"], executor=executor, n_jobs=2, **kw)
    assert len(par.errors) == 0, par.errors
    assert par.table.equals(serial.table)


# --------------------------------------------------------------------------- counts


def test_large_counts_widen_instead_of_wrapping():
    model = _engine.CountModel(
        base_mean=np.array([3e9, 5.0]), dispersion=np.array([0.01, 0.1]), shared=np.zeros(2),
        effects=np.zeros((0, 2)), target_index=np.zeros(0, np.int64), guide_efficiency=np.zeros(0),
        replicate_log2fc=np.zeros((1, 2)), library_sd=0.0)
    design = _engine.Design(group=np.zeros(4, np.int64), guide=np.full(4, -1), replicate=np.zeros(4, np.int64))
    X, _ = _engine.draw_counts(model, design, np.random.SeedSequence(0))
    assert X.dtype == np.int64
    assert X[:, 0].toarray().min() > 2**31  # > int32 max, kept exactly
    assert X.data.min() >= 0


def test_library_loc_20_gives_non_negative_counts():
    a = sp.sim.screen(n_genes=30, n_perturbations=2, n_control_cells=20, cells_per_perturbation=5,
                      library_loc=20.0, rng=0)
    assert a.X.data.min() >= 0
    assert a.X.dtype in (np.int32, np.int64)
    big = a.X.max()
    assert big > 1e6


def test_memory_is_checked_before_drawing(monkeypatch):
    monkeypatch.setattr(_engine, "_available_memory", lambda: 8 * 2**30)
    t0 = time.perf_counter()
    with pytest.raises(MemoryError, match=r"needs about .* GiB, more than the 8.0 GiB .*pseudobulk"):
        sp.sim.screen(n_genes=3000, n_perturbations=10, n_control_cells=4_000_000, rng=0)
    assert time.perf_counter() - t0 < 10


def test_cli_reports_memory_refusal(tmp_path, monkeypatch):
    monkeypatch.setattr(_engine, "_available_memory", lambda: 2**30)
    res = _run("simulate", "sparse_strong", "--set", "n_control_cells=2000000", "-o", tmp_path / "s.h5ad")
    assert res.exit_code == 2 and "GiB" in res.output
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- nuisances


BASE = dict(n_genes=40, n_perturbations=5, n_control_cells=30, cells_per_perturbation=25,
            cell_count_dispersion=0.0, escape_rate=0.0, systematic_strength=0.0, n_guides=1,
            n_replicates=1, replicate_sd=0.0)


def _pair(**on):
    a = sp.sim.screen(rng=11, **BASE)
    b = sp.sim.screen(rng=11, **{**BASE, **on})
    return a, b


def _same_cells(a, b, rows_a, rows_b):
    xa = a.X[rows_a].toarray()
    xb = b.X[rows_b].toarray()
    return np.array_equal(xa, xb)


def _expected(a):
    return sp.sim.expected_counts(a)


def test_escape_switched_off_leaves_never_escaped_cells():
    a, b = _pair(escape_rate=0.3)
    esc = b.obs["escaped"].to_numpy()
    assert esc.any() and not a.obs["escaped"].any()
    keep = ~esc
    mu_a, mu_b = _expected(a), _expected(b)
    assert np.allclose(mu_a[keep], mu_b[keep])
    assert _same_cells(a, b, keep, keep)
    assert not _same_cells(a, b, esc, esc)


def test_systematic_response_leaves_control_cells():
    a, b = _pair(systematic_strength=1.0)
    ctrl = a.obs["is_control"].to_numpy()
    assert _same_cells(a, b, ctrl, ctrl)
    assert not _same_cells(a, b, ~ctrl, ~ctrl)


def test_unequal_cell_counts_leave_the_first_cells_of_each_perturbation():
    a, b = _pair(cell_count_dispersion=0.5)
    for pert in a.obs["perturbation"].cat.categories:
        ia = np.flatnonzero(a.obs["perturbation"].to_numpy() == pert)
        ib = np.flatnonzero(b.obs["perturbation"].to_numpy() == pert)
        n = min(ia.size, ib.size)
        assert _same_cells(a, b, ia[:n], ib[:n]), pert
    assert a.n_obs != b.n_obs


def test_more_guides_leave_cells_of_the_first_guide():
    a, b = _pair(n_guides=3)
    first = b.obs["guide"].astype(str).str.endswith("_1").to_numpy() | b.obs["is_control"].to_numpy()
    assert 0 < first.sum() < b.n_obs
    eff_a = np.asarray(a.uns["simpert"]["truth"]["guide_efficiency"]).reshape(5, 1)
    eff_b = np.asarray(b.uns["simpert"]["truth"]["guide_efficiency"]).reshape(5, 3)
    np.testing.assert_array_equal(eff_a[:, 0], eff_b[:, 0])
    assert _same_cells(a, b, first, first)


def test_replicates_without_offsets_leave_every_cell():
    a, b = _pair(n_replicates=3)
    assert set(b.obs["replicate"]) == {0, 1, 2}
    assert _same_cells(a, b, slice(None), slice(None))
