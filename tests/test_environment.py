"""The environment the README's commands promise."""

import subprocess

import pytest

import simpert


def test_deseq2_loads_in_rscript(rscript):
    out = subprocess.run(
        [rscript, "-e", "cat(as.character(packageVersion('DESeq2')))"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    major, minor = (int(x) for x in out.stdout.strip().split(".")[:2])
    assert (major, minor) >= (1, 30)


def test_rpy2_talks_to_r(rpy2_robjects):
    assert float(rpy2_robjects.r("1 + 1")[0]) == 2.0


def test_namespaces_import():
    for name in simpert.__all__:
        if name != "__version__":
            assert getattr(simpert, name) is not None


def test_unknown_attribute_is_a_clear_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        simpert.nope  # noqa: B018


def test_starting_r_leaves_child_processes_working(rpy2_robjects):
    import os
    import sys

    assert float(rpy2_robjects.r("1 + 1")[0]) == 2.0
    assert "/usr/lib/R/lib" not in (os.environ.get("LD_LIBRARY_PATH") or "")
    out = subprocess.run([sys.executable, "-c", "import ssl, json; print('child ok')"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
