"""The one place that starts R inside Python (through rpy2).

Starting the embedded R sets ``LD_LIBRARY_PATH`` (and a few other variables) from R's
``ldpaths`` for the current process. Child processes started later (joblib or Dask workers,
subprocesses) inherit that environment and may then load the system's shared libraries in
place of the interpreter's own, which breaks them. :func:`robjects` therefore restores the
environment as it was before R started: R's libraries are already loaded in this process,
so it keeps working, and children start with the environment the user gave.

A broken R installation (``R_HOME`` pointing nowhere, a missing shared library) makes the
embedded R abort the whole process. R is therefore first started in a child process
(:func:`probe_r`); only when that works is it started here, and a failure becomes an
``ImportError`` with simpert's message and R's own last lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

__all__ = ["robjects", "rpy2_available", "probe_r"]

_LOCK = threading.Lock()
_RO = None
_RESTORED = ("LD_LIBRARY_PATH", "R_LD_LIBRARY_PATH")
_PROBED: dict = {}
_PROBE = "import rpy2.robjects as ro; print(ro.r('R.version.string')[0])"


def probe_r(timeout: float = 120.0) -> str | None:
    """Start R through rpy2 in a child process and report what went wrong, if anything.

    Parameters
    ----------
    timeout : float, default 120
        Seconds to wait for the child.

    Returns
    -------
    str or None
        None when R starts; otherwise a description of the failure (exit status and the last
        lines R or Python printed). The answer is cached per ``R_HOME`` for the process.
    """
    key = os.environ.get("R_HOME")
    if key in _PROBED:
        return _PROBED[key]
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        result = f"R did not start within {timeout:g} s"
    except OSError as err:
        result = f"the probe could not run: {err}"
    else:
        if proc.returncode == 0:
            result = None
        else:
            tail = " | ".join(line.strip() for line in (proc.stderr or proc.stdout).strip().splitlines()[-4:])
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"status {proc.returncode}"
            result = f"starting R exited with {how}: {tail or 'no message'}"
    _PROBED[key] = result
    return result


def robjects(purpose: str = "this feature"):
    """Return ``rpy2.robjects``, starting R on first use with the environment kept clean.

    Parameters
    ----------
    purpose : str
        What needs R, named in the error message.

    Returns
    -------
    module
        ``rpy2.robjects``.

    Raises
    ------
    ImportError
        When rpy2 or R is missing, with the install line to run.
    """
    global _RO
    if _RO is not None:
        return _RO
    with _LOCK:
        if _RO is None:
            problem = probe_r()
            if problem is not None:
                home = os.environ.get("R_HOME")
                raise ImportError(
                    f"{purpose} needs a working R with rpy2, and R failed to start"
                    f"{f' (R_HOME={home!r})' if home else ''}: {problem}. Check the R installation "
                    "(Debian: apt-get install r-base-core r-bioc-deseq2; unset or correct R_HOME), "
                    "or use backend='native'"
                )
            before = {k: os.environ.get(k) for k in _RESTORED}
            try:
                import rpy2.robjects as ro
            except Exception as err:
                raise ImportError(
                    f"{purpose} needs R and rpy2: install R (Debian: apt-get install r-base-core "
                    "r-bioc-deseq2), then pip install 'simpert[r]' (rpy2 < 3.6 for R 4.2); "
                    f"importing rpy2.robjects failed: {err}"
                ) from err
            finally:
                for key, value in before.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
            _RO = ro
    return _RO


def rpy2_available() -> bool:
    """Whether ``rpy2.robjects`` can be imported (starts R when it can)."""
    try:
        robjects()
    except ImportError:
        return False
    return True
