"""Run a benchmark stage in a child process (one BLAS thread) and read the JSON it prints last.

A separate process per stage gives each its own peak RSS (``resource.getrusage`` of the
child) and keeps one stage's memory from inflating the next.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

__all__ = ["run_child"]


def run_child(script: str, args) -> dict:
    """``python script --child *args``; the parsed last line of its standard output.

    Parameters
    ----------
    script : str
        The benchmark script (its ``--child`` option runs one stage and prints a JSON line).
    args : sequence
        Arguments after ``--child`` (converted with ``str``).

    Returns
    -------
    dict
    """
    proc = subprocess.run([sys.executable, script, "--child", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])
