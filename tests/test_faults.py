"""Bad input and faults, one row each, through the Python API and the command line.

Every row asserts that the error is raised before any output appears, that its message
names the offending parameter (or option), and that nothing is left at the output path or
beside it (no temporary file). Command-line rows also assert exit status 2 (a user error,
one ``error: ...`` line, no traceback).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import simpert as sp
from simpert.cli import app
from simpert.predict._types import Prediction, Predictions

# --------------------------------------------------------------------------- shared inputs


@pytest.fixture(scope="module")
def screen():
    return sp.sim.screen(n_genes=60, n_perturbations=6, n_control_cells=40, cells_per_perturbation=15,
                         n_replicates=2, rng=3)


@pytest.fixture(scope="module")
def pseudobulk(screen):
    return sp.sim.pseudobulk(screen, by=("perturbation", "replicate"))


@pytest.fixture(scope="module")
def scored(screen):
    split = sp.predict.split(screen, test_fraction=0.5, rng=0)
    preds = sp.predict.make(screen, split, ["mean", "control"], rng=0)
    return screen, split, preds


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, screen):
    """Files the command-line rows read (outside each row's own output folder)."""
    d = tmp_path_factory.mktemp("inputs")
    screen.write_h5ad(d / "screen.h5ad")
    neg = screen.copy()
    neg.X = neg.X.astype(np.int64)
    neg.X.data[0] = -3
    neg.write_h5ad(d / "negative.h5ad")
    (d / "metric.py").write_text("def boom(inp):\n    raise RuntimeError('boom')\n")
    return d


def _pred_with(preds, name, *, control=None, profiles=None):
    p = preds[name]
    return Predictions({"x": Prediction(name="x", profiles=p.profiles if profiles is None else profiles,
                                        control=p.control if control is None else control)})


def _string_metric(inp):
    return np.array(["a"] * len(inp.perturbations))


def _scalar_metric(inp):
    return 0.5


def _raising_metric(inp):
    raise RuntimeError("boom")


def _nan_control(preds):
    c = preds["mean"].control.copy()
    c.iloc[0] = np.nan
    return _pred_with(preds, "mean", control=c)


def _dup_rows(preds):
    prof = preds["mean"].profiles
    return _pred_with(preds, "mean", profiles=pd.concat([prof, prof.iloc[:1]]))


def _inf_profile(preds):
    prof = preds["mean"].profiles.copy()
    prof.iloc[0, 0] = np.inf
    return _pred_with(preds, "mean", profiles=prof)


# --------------------------------------------------------------------------- API rows
# (id, function of the fixtures, exception type, text the message must contain)

SP = sp.sim.ScreenParams
_inf = float("inf")
_nan = float("nan")

API_ROWS = [
    # simulate: parameters
    ("screen-n_genes-0", lambda f: SP(n_genes=0), ValueError, "'n_genes'"),
    ("screen-p_effect-1.5", lambda f: SP(p_effect=1.5), ValueError, "'p_effect'"),
    ("screen-library_loc-inf", lambda f: SP(library_loc=_inf), ValueError, "'library_loc'"),
    ("screen-mean_scale-inf", lambda f: SP(mean_scale=_inf), ValueError, "'mean_scale'"),
    ("screen-mean_shape-nan", lambda f: SP(mean_shape=_nan), ValueError, "'mean_shape'"),
    ("screen-dispersion_a0-1e300", lambda f: SP(dispersion_a0=1e300), ValueError, "'dispersion_a0'"),
    ("screen-dispersion_a1-inf", lambda f: SP(dispersion_a1=_inf), ValueError, "'dispersion_a1'"),
    ("screen-escape_rate-nan", lambda f: SP(escape_rate=_nan), ValueError, "'escape_rate'"),
    ("screen-escape_rate-1", lambda f: SP(escape_rate=1.0), ValueError, "'escape_rate'"),
    ("screen-effect_size-neg", lambda f: SP(effect_size=-1), ValueError, "'effect_size'"),
    ("screen-effect_size-inf", lambda f: SP(effect_size=_inf), ValueError, "'effect_size'"),
    ("screen-cells-inf", lambda f: SP(cells_per_perturbation=_inf), ValueError, "'cells_per_perturbation'"),
    ("screen-n_replicates-1.5", lambda f: SP(n_replicates=1.5), ValueError, "'n_replicates'"),
    ("screen-n_guides-0", lambda f: SP(n_guides=0), ValueError, "'n_guides'"),
    ("screen-modality", lambda f: SP(modality="crispr"), ValueError, "'modality'"),
    ("screen-control_label-empty", lambda f: SP(control_label=""), ValueError, "'control_label'"),
    ("screen-gene_means-inf", lambda f: SP(n_genes=3, n_perturbations=1, gene_means=(1.0, _inf, 2.0)),
     ValueError, "'gene_means'"),
    ("screen-gene_means-length", lambda f: SP(n_genes=3, n_perturbations=1, gene_means=(1.0, 2.0)),
     ValueError, "'gene_means'"),
    ("screen-direction-nan", lambda f: SP(n_genes=2, n_perturbations=1, systematic_direction=(1.0, _nan)),
     ValueError, "'systematic_direction'"),
    ("screen-too-many-perturbations", lambda f: SP(n_genes=5, n_perturbations=6), ValueError,
     "'n_perturbations'"),
    ("screen-write_from", lambda f: sp.sim.screen(n_genes=10, n_perturbations=1, out="s.zarr",
                                                   write_from="main"), ValueError, "'write_from'"),
    ("screen-unknown-field", lambda f: sp.sim.screen(n_genes=10, n_perturbations=1, nonsense=1), TypeError,
     "nonsense"),
    ("screen-output", lambda f: sp.sim.screen(n_genes=10, n_perturbations=1, output="dense"), ValueError,
     "'output'"),
    ("screen-params-type", lambda f: sp.sim.screen("sparse", rng=0), TypeError, "'params'"),
    ("screen-rng-type", lambda f: sp.sim.screen(n_genes=10, n_perturbations=1, rng="abc"), TypeError, "'rng'"),
    ("screen-means-overflow", lambda f: sp.sim.screen(n_genes=20, n_perturbations=2, mean_scale=1e16, rng=0),
     ValueError, "'library_loc'"),
    ("screen-effects-overflow", lambda f: sp.sim.screen(n_genes=20, n_perturbations=2, p_effect=1.0,
                                                         effect_size=1e300, rng=0), ValueError, "'effect_size'"),
    ("noise_only-n-1", lambda f: sp.sim.noise_only(n=1), ValueError, "'n'"),
    ("noise_only-sigma-inf", lambda f: sp.sim.noise_only(sigma=_inf), ValueError, "'sigma'"),
    ("noise_only-mean-huge", lambda f: sp.sim.noise_only(noise="nb", mean=1e300, rng=0), ValueError, "'mean'"),
    ("noise_only-noise", lambda f: sp.sim.noise_only(noise="poisson"), ValueError, "'noise'"),
    # VAR networks
    ("var-unstable", lambda f: sp.sim.var_network(sp.sim.erdos_renyi(20, 0.3, rng=0), steps=500,
                                                   spectral_radius=5.0, rng=0), ValueError, "'spectral_radius'"),
    ("var-clamp-inf", lambda f: sp.sim.var_network(sp.sim.erdos_renyi(10, 0.3, rng=0), clamp_value=_inf),
     ValueError, "'clamp_value'"),
    ("var-empty-edges", lambda f: sp.sim.network_from_edges([]), ValueError, "'edges'"),
    ("var-edge-weight-nan", lambda f: sp.sim.network_from_edges([("a", "b", _nan)]), ValueError, "'edges'"),
    ("var-network-type", lambda f: sp.sim.var_network("net"), TypeError, "'network'"),
    ("var-perturb-unknown", lambda f: sp.sim.var_network(sp.sim.erdos_renyi(5, 0.3, rng=0), perturb=["nope"]),
     ValueError, "'perturb'"),
    # differential expression
    ("de-negative-cell-count", lambda f: sp.de.deseq(_negative(f["screen"]), control="control"), ValueError,
     "'adata'"),
    ("de-nan-cell-count", lambda f: sp.de.deseq(_nan_cells(f["screen"]), control="control"), ValueError,
     "'adata'"),
    ("de-control", lambda f: sp.de.deseq(f["pseudobulk"], control="ctl"), ValueError, "'control'"),
    ("de-backend", lambda f: sp.de.deseq(f["pseudobulk"], control="control", backend="xx"), ValueError,
     "'backend'"),
    ("de-shrink", lambda f: sp.de.deseq(f["pseudobulk"], control="control", shrink="xx"), ValueError,
     "'shrink'"),
    ("de-design", lambda f: sp.de.deseq(f["pseudobulk"], control="control", design="nope"), ValueError,
     "'design'"),
    # metrics and score
    ("score-metrics-empty", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=[]),
     ValueError, "'metrics'"),
    ("score-metrics-none", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=None),
     ValueError, "'metrics'"),
    ("score-metrics-int", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=[3]),
     TypeError, "'metrics'"),
    ("score-metrics-unknown", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=["nope"]),
     ValueError, "'metrics'"),
    ("score-metrics-repeated", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"],
                                                          metrics=["mse", "mse"]), ValueError, "'metrics'"),
    ("score-nan-control", lambda f: sp.metrics.score(_nan_control(f["preds"]), f["screen"], f["split"],
                                                     metrics=["pearson_delta"]), ValueError, "'control'"),
    ("score-inf-profile", lambda f: sp.metrics.score(_inf_profile(f["preds"]), f["screen"], f["split"],
                                                     metrics=["mse"]), ValueError, "'profiles'"),
    ("score-duplicated-rows", lambda f: sp.metrics.score(_dup_rows(f["preds"]), f["screen"], f["split"],
                                                         metrics=["pearson_delta"]), ValueError, "'preds'"),
    ("score-target", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=["mse"],
                                                target="bogus"), ValueError, "'target'"),
    ("score-reference", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=["mse"],
                                                   reference="bogus"), ValueError, "'reference'"),
    ("score-reference-nan", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=["mse"],
                                                       reference=np.full(60, np.nan)), ValueError, "'reference'"),
    ("score-weights-shape", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=["wmse"],
                                                       weights=np.ones(3)), ValueError, "'weights'"),
    ("score-options", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=["mse"],
                                                 options={"nope": 1}), ValueError, "'options'"),
    ("score-target_sum", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"], metrics=["mse"],
                                                    target_sum=0), ValueError, "'target_sum'"),
    ("score-split-type", lambda f: sp.metrics.score(f["preds"], f["screen"], "split", metrics=["mse"]),
     TypeError, "'split'"),
    ("score-string-metric", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"],
                                                       metrics=[_string_metric]), ValueError, "'_string_metric'"),
    ("score-scalar-metric", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"],
                                                       metrics=[_scalar_metric]), ValueError, "'_scalar_metric'"),
    ("score-raising-metric-only", lambda f: sp.metrics.score(f["preds"], f["screen"], f["split"],
                                                             metrics=[_raising_metric]), ValueError, "boom"),
    # calibrate
    ("calibrate-n_replicates", lambda f: sp.calibrate.calibrate(["mse"], ["noise_only"], n_replicates=0),
     ValueError, "'n_replicates'"),
    ("calibrate-executor", lambda f: sp.calibrate.calibrate(["mse"], ["noise_only"], executor="spark"),
     ValueError, "'executor'"),
    ("calibrate-n_jobs", lambda f: sp.calibrate.calibrate(["mse"], ["noise_only"], n_jobs=0), ValueError,
     "'n_jobs'"),
    ("calibrate-scenarios-empty", lambda f: sp.calibrate.calibrate(["mse"], []), ValueError, "'scenarios'"),
    ("calibrate-scenario-unknown", lambda f: sp.calibrate.calibrate(["mse"], ["noise_only", "nope"]),
     ValueError, "'scenario'"),
    ("calibrate-predictors-empty", lambda f: sp.calibrate.calibrate(["mse"], ["noise_only"], predictors=[]),
     ValueError, "'predictors'"),
    ("calibrate-metric-unknown", lambda f: sp.calibrate.calibrate(["nope"], ["noise_only"]), ValueError,
     "nope"),
]


def _negative(screen):
    a = screen.copy()
    a.X = a.X.astype(np.int64)
    a.X.data[0] = -3
    return a


def _nan_cells(screen):
    a = screen.copy()
    a.X = a.X.astype(np.float64)
    a.X.data[0] = np.nan
    return a


@pytest.mark.parametrize("row", API_ROWS, ids=[r[0] for r in API_ROWS])
def test_api_fault(row, screen, pseudobulk, scored, tmp_path, monkeypatch):
    _, fn, exc, text = row
    monkeypatch.chdir(tmp_path)
    fixtures = {"screen": screen, "pseudobulk": pseudobulk, "split": scored[1], "preds": scored[2]}
    with pytest.raises(exc) as info:
        fn(fixtures)
    assert text in str(info.value), str(info.value)
    assert "Traceback" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing written in the working directory


# --------------------------------------------------------------------------- command-line rows
# (id, arguments with {in} = inputs folder and {out} = this row's output folder, text, setup)


def _user_dir(out: Path) -> None:
    (out / "mine").mkdir()
    (out / "mine" / "notes.txt").write_text("keep me")


def _regular_file(out: Path) -> None:
    (out / "plain").write_text("a file")


CLI_ROWS = [
    ("simulate-user-dir", "simulate noise_only -o {out}/mine -f mtx", "is not a simpert output", _user_dir),
    ("simulate-calibration-dir-as-mtx", "simulate noise_only -o {out}/mine", "is not a simpert output", _user_dir),
    ("simulate-txt-suffix", "simulate noise_only -o {out}/s.txt", "'--output'", None),
    ("simulate-h5ad-format-mismatch", "simulate noise_only -f h5ad -o {out}/s.mtx", "'--output'", None),
    ("simulate-missing-parent", "simulate noise_only -o {out}/missing/s.h5ad", "does not exist", None),
    ("simulate-under-file", "simulate noise_only -o {out}/plain/s.h5ad", "is a file", _regular_file),
    ("simulate-dir-at-h5ad", "simulate noise_only -o {out}/mine", "is not a simpert output", _user_dir),
    ("simulate-unknown-scenario", "simulate nope -o {out}/s.h5ad", "scenario 'nope'", None),
    ("simulate-write-from-h5ad", "simulate noise_only --write-from client -o {out}/s.h5ad", "'--write-from'", None),
    ("simulate-set-negative", "simulate sparse_weak --set n_genes=-1 -o {out}/s.h5ad", "'n_genes'", None),
    ("simulate-set-inf", "simulate sparse_weak --set library_loc=inf -o {out}/s.h5ad", "'library_loc'", None),
    ("simulate-set-unknown", "simulate sparse_weak --set bogus=1 -o {out}/s.h5ad", "'bogus'", None),
    ("simulate-set-malformed", "simulate sparse_weak --set n_genes -o {out}/s.h5ad", "'--set'", None),
    ("de-missing-input", "de {out}/none.h5ad -o {out}/t.csv", "does not exist", None),
    ("de-bad-suffix", "de {in}/screen.h5ad -o {out}/t.xlsx", "'--output'", None),
    ("de-under-file", "de {in}/screen.h5ad -o {out}/plain/t.csv", "is a file", _regular_file),
    ("de-missing-parent", "de {in}/screen.h5ad -o {out}/nodir/t.csv", "does not exist", None),
    ("de-negative-counts", "de {in}/negative.h5ad -o {out}/t.csv", "'adata'", None),
    ("de-control", "de {in}/screen.h5ad --control ctl -o {out}/t.csv", "'control'", None),
    ("score-neither-input", "score -o {out}/s.csv", "--scenario", None),
    ("score-unknown-metric", "score -s noise_only -m nope -o {out}/s.csv", "metric 'nope'", None),
    ("score-bad-suffix", "score -s noise_only -o {out}/s.json", "'--output'", None),
    ("score-missing-parent", "score -s noise_only -o {out}/nodir/s.csv", "does not exist", None),
    ("score-test-fraction", "score -s noise_only --test-fraction 1.0 -o {out}/s.csv", "'--test-fraction'", None),
    ("score-failing-metric-only", "score -s noise_only -m {in}/metric.py:boom -o {out}/s.csv", "boom", None),
    ("calibrate-user-dir", "calibrate -m mse -s noise_only -r 1 -e serial -o {out}/mine", "is not a simpert output",
     _user_dir),
    ("calibrate-over-file", "calibrate -m mse -s noise_only -r 1 -e serial -o {out}/plain", "is a file",
     _regular_file),
    ("calibrate-missing-metric-file", "calibrate -m {out}/none.py:f -s noise_only -o {out}/c", "metric file", None),
    ("calibrate-scheduler-without-dask", "calibrate -m mse -s noise_only --scheduler tcp://x:1 -o {out}/c",
     "'--scheduler'", None),
    ("calibrate-unknown-scenario", "calibrate -m mse -s nope -o {out}/c", "scenario 'nope'", None),
    ("calibrate-unknown-metric", "calibrate -m nope -s noise_only -o {out}/c", "metric 'nope'", None),
]


def _files(folder: Path) -> set:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("row", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_cli_fault(row, inputs, tmp_path):
    _, args, text, setup = row
    out = tmp_path / "out"
    out.mkdir()
    if setup is not None:
        setup(out)
    before = _files(out)
    argv = args.format(**{"in": inputs, "out": out}).split()
    res = CliRunner().invoke(app, argv)
    message = res.output
    assert res.exit_code == 2, message
    assert "error:" in message and "Traceback" not in message, message
    assert text in message, message
    assert _files(out) == before  # no output, no temporary file, nothing removed
    if setup is _user_dir:
        assert (out / "mine" / "notes.txt").read_text() == "keep me"


def test_there_are_at_least_sixty_rows():
    assert len(API_ROWS) + len(CLI_ROWS) >= 60


def test_broken_r_is_an_error_not_an_abort(tmp_path):
    """R_HOME pointing nowhere: the R backend raises ImportError; the process lives on."""
    import subprocess
    import sys

    code = ("import simpert as sp\n"
            "pb = sp.sim.screen(n_genes=20, n_perturbations=2, n_replicates=2, output='pseudobulk', rng=0)\n"
            "try:\n    sp.de.deseq(pb, control='control', backend='r')\n"
            "except ImportError as err:\n    print('IMPORTERROR', err)\n"
            "print('ALIVE')\n")
    env = dict(os.environ, R_HOME=str(tmp_path / "no-R-here"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTERROR backend='r' needs a working R" in proc.stdout
    assert "R_HOME=" in proc.stdout and "ALIVE" in proc.stdout
