"""The wheel as a user gets it: built from this checkout, installed into a fresh virtual
environment (dependencies from the package index), then ``simpert --help`` and a tiny
simulate -> evaluate round trip run there, outside the source tree.

A file the package needs at run time but the wheel does not carry (the scenario TOMLs)
fails here; so does anything from ``tests/`` slipping into the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(p.name for p in (ROOT / "simulations").glob("*.toml"))

PREDICT = r"""
import sys
import anndata as ad
import numpy as np
real = ad.read_h5ad(sys.argv[1])
rng = np.random.default_rng(1)
pred = real.copy()
x = pred.X.toarray() if hasattr(pred.X, "toarray") else np.asarray(pred.X)
pred.X = rng.poisson(x + 0.5).astype(np.float32)   # a noisy copy of the observation
pred.write_h5ad(sys.argv[2])
"""


def _run(cmd, *, cwd, env, timeout=900):
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], cwd=ROOT, env=env)
    wheels = sorted(out.glob("simpert-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).name for n in names if n.startswith("simpert/scenarios/"))
    assert SCENARIOS and shipped == SCENARIOS, f"scenario files in the wheel: {shipped}, expected {SCENARIOS}"
    leaked = [n for n in names if n.startswith("tests/") or "/tests/" in n or "golden" in n]
    assert not leaked, f"test files in the wheel: {leaked}"
    top = {n.split("/")[0] for n in names}
    assert top == {"simpert", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, top


def test_wheel_in_fresh_venv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bin_dir = env_dir / "bin"
    py = bin_dir / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "SIMPERT_SCENARIOS", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join([str(bin_dir), "/usr/local/bin", "/usr/bin", "/bin"])
    env["MPLBACKEND"] = "Agg"
    work = tmp_path / "work"   # outside the source tree: nothing is found through the checkout
    work.mkdir()
    _run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
         cwd=work, env=env, timeout=1200)

    where = _run([str(py), "-c", "import simpert, sys; print(simpert.__file__)"], cwd=work, env=env)
    assert str(env_dir) in where.stdout and str(ROOT) not in where.stdout, where.stdout

    cli = str(bin_dir / "simpert")
    helptext = _run([cli, "--help"], cwd=work, env=env).stdout
    for cmd in ("simulate", "evaluate", "scenarios"):
        assert cmd in helptext
    listed = _run([cli, "scenarios"], cwd=work, env=env).stdout
    for name in SCENARIOS:
        assert Path(name).stem in listed, f"{name} not listed by the installed package:\n{listed}"

    _run([cli, "simulate", "sparse_weak", "--set", "n_genes=100", "--set", "n_perturbations=6",
          "--set", "cells_per_perturbation=30", "--set", "n_control_cells=60",
          "--seed", "3", "-o", "real.h5ad"], cwd=work, env=env)
    _run([str(py), "-c", PREDICT, "real.h5ad", "pred.h5ad"], cwd=work, env=env)
    _run([cli, "evaluate", "--pred", "pred.h5ad", "--real", "real.h5ad", "-m", "mse",
          "--n-boot", "50", "-o", "eval"], cwd=work, env=env)
    import pandas as pd
    res = pd.read_csv(work / "eval" / "results.csv")
    assert set(res["metric"]) == {"mse"}
    assert res["value"].notna().all() and len(res) >= 6
