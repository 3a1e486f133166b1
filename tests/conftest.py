"""Shared test fixtures.

Tests that need R use the ``r_available`` fixture or ``@pytest.mark.r``; when R (or rpy2,
or an R package) is missing they skip, except when ``SIMPERT_REQUIRE_R=1``, where the skip
becomes a failure so that CI cannot pass without really running them.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

REQUIRE_R = os.environ.get("SIMPERT_REQUIRE_R", "") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it when SIMPERT_REQUIRE_R=1."""
    if REQUIRE_R:
        pytest.fail(f"SIMPERT_REQUIRE_R=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _rscript_ok() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    try:
        out = subprocess.run(
            ["Rscript", "-e", "cat(as.character(packageVersion('DESeq2')))"],
            capture_output=True, text=True, timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as err:  # pragma: no cover
        return f"Rscript failed to run: {err}"
    if out.returncode != 0:
        return f"R package DESeq2 does not load: {out.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="session")
def rscript():
    """Path to Rscript with DESeq2 loadable (skip/fail otherwise)."""
    problem = _rscript_ok()
    if problem:
        skip_or_fail(problem)
    return shutil.which("Rscript")


@pytest.fixture(scope="session")
def rpy2_robjects(rscript):
    """The ``rpy2.robjects`` module (skip/fail when rpy2 is missing)."""
    from simpert._rbridge import robjects

    try:
        ro = robjects("the R tests")
    except ImportError as err:  # pragma: no cover - depends on environment
        skip_or_fail(f"rpy2 does not import: {err}")
    return ro


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "r" in item.keywords and "rscript" not in getattr(item, "fixturenames", ()):
            item.fixturenames.append("rscript")
