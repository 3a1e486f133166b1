"""The one place that starts R inside Python (through rpy2).

Starting the embedded R sets ``LD_LIBRARY_PATH`` (and a few other variables) from R's
``ldpaths`` for the current process. Child processes started later (joblib or Dask workers,
subprocesses) inherit that environment and may then load the system's shared libraries in
place of the interpreter's own, which breaks them. :func:`robjects` therefore restores the
environment as it was before R started: R's libraries are already loaded in this process,
so it keeps working, and children start with the environment the user gave.
"""

from __future__ import annotations

import os
import threading

__all__ = ["robjects", "rpy2_available"]

_LOCK = threading.Lock()
_RO = None
_RESTORED = ("LD_LIBRARY_PATH", "R_LD_LIBRARY_PATH")


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
