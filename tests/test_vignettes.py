"""The vignettes execute: the Python ones as scripts, the R Markdown one with rmarkdown::render."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VIGNETTES = ROOT / "vignettes"

sys.path.insert(0, str(ROOT))
from vignettes import render  # noqa: E402

PY_VIGNETTES = render.python_vignettes()


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    env["MPLBACKEND"] = "Agg"
    env.update(extra or {})
    return env


def test_the_four_vignettes_exist():
    names = {p.stem for p in PY_VIGNETTES} | {p.stem for p in render.r_vignettes()}
    assert {"calibrate_a_metric", "mean_baseline", "de_shrinkage", "r_package"} <= names
    for p in PY_VIGNETTES:  # jupytext percent format, so that render.py can execute them
        assert "# %%" in p.read_text(), p


def test_render_rejects_unknown_names(capsys):
    assert render.main(["--only", "no_such_vignette", "--out", str(VIGNETTES / "_build")]) == 2
    assert "unknown vignette" in capsys.readouterr().err


@pytest.mark.parametrize("path", PY_VIGNETTES, ids=lambda p: p.stem)
def test_python_vignette_runs(path, tmp_path):
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _cli_for_r(tmp_path: Path) -> dict:
    """Environment that lets R find the simpert command line and the installed R package."""
    extra = {}
    if not os.environ.get("SIMPERT_CLI") and shutil.which("simpert") is None:
        wrapper = tmp_path / "simpert"
        wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}" '
                           f'exec "{sys.executable}" -m simpert.cli "$@"\n')
        wrapper.chmod(0o755)
        extra["SIMPERT_CLI"] = str(wrapper)
    libs = [os.environ.get("R_LIBS_USER", ""), str(ROOT / ".rlib")]
    extra["R_LIBS_USER"] = os.pathsep.join(p for p in libs if p)
    probe = subprocess.run(["Rscript", "-e", "packageVersion('simpert')"], env=_env(extra),
                           capture_output=True, text=True)
    if probe.returncode != 0:  # install the R package into a private library
        lib = tmp_path / "rlib"
        lib.mkdir()
        subprocess.run(["R", "CMD", "INSTALL", "--no-multiarch", f"--library={lib}", str(ROOT / "r")],
                       check=True, capture_output=True, env=_env(extra))
        extra["R_LIBS_USER"] = os.pathsep.join([str(lib), extra["R_LIBS_USER"]])
    return extra


def test_r_vignette_renders(tmp_path, rscript):
    extra = _cli_for_r(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    old = dict(os.environ)
    os.environ.update(extra)
    try:
        html = render.render_r(VIGNETTES / "r_package.Rmd", out)
    finally:
        os.environ.clear()
        os.environ.update(old)
    text = html.read_text()
    assert "SummarizedExperiment" in text
    assert "max_abs_diff" in text and "my_mae" in text
