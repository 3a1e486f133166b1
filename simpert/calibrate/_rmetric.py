"""Metrics written in R, called through rpy2.

The R function receives the predicted and observed profiles and the two control profiles::

    my_metric <- function(pred, real, pred_control, real_control) {
        # pred, real: numeric matrices, perturbations x genes (with dimnames)
        # pred_control, real_control: named numeric vectors over genes
        sapply(seq_len(nrow(pred)), function(i)
            cor(pred[i, ] - pred_control, real[i, ] - real_control))
    }

and returns one number per perturbation (row). Only the R source text travels with the
metric (it pickles as text), and R starts lazily in whichever process first calls it, so
R metrics run under the joblib and Dask executors as well as in this process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from .._rbridge import robjects
from .._validation import Instance, check, fail

__all__ = ["RFunction", "r_metric"]

# (sha256 of source, function name) -> R closure, per process.
_CACHE: dict = {}
_LOCK = threading.Lock()


def _robjects():
    return robjects("an R metric")


class RFunction:
    """A picklable callable that evaluates an R function on a ``MetricInput``.

    Parameters
    ----------
    source : str
        R source text defining ``function``.
    function : str
        Name of the R function in ``source``.

    Notes
    -----
    The R closure is created on first call in each process (``source`` is parsed in a
    fresh environment whose parent is R's global environment) and cached per process.
    """

    def __init__(self, source: str, function: str):
        self.source = source
        self.function = function
        self.key = (hashlib.sha256(source.encode()).hexdigest(), function)

    def __getstate__(self):
        return {"source": self.source, "function": self.function}

    def __setstate__(self, state):
        self.__init__(state["source"], state["function"])

    def __repr__(self):
        return f"RFunction(function={self.function!r}, source={len(self.source)} characters)"

    def closure(self):
        """The R function object (parsing the source in this process on first use)."""
        with _LOCK:
            fn = _CACHE.get(self.key)
            if fn is None:
                ro = _robjects()
                env = ro.r["new.env"]()
                try:
                    ro.r["eval"](ro.r["parse"](text=self.source), envir=env)
                except Exception as err:
                    raise ValueError(f"parameter 'source' must be valid R code; R says: {err}") from None
                exists = ro.r["exists"](self.function, envir=env, inherits=False)[0]
                if not exists:
                    fail("function", "the name of a function defined in the R source",
                         self.function)
                fn = ro.r["get"](self.function, envir=env)
                if not ro.r["is.function"](fn)[0]:
                    fail("function", "the name of an R function (not another R object)",
                         self.function)
                _CACHE[self.key] = fn
        return fn

    def __call__(self, inp) -> np.ndarray:
        """Evaluate the R function on ``inp`` (a :class:`simpert.metrics.MetricInput`)."""
        ro = _robjects()
        fn = self.closure()
        perts = [str(p) for p in inp.perturbations]
        genes = [str(g) for g in inp.genes]

        def matrix(a):
            a = np.asarray(a, dtype=np.float64)
            dimnames = ro.r["list"](ro.StrVector(perts), ro.StrVector(genes))
            return ro.r["matrix"](ro.FloatVector(a.ravel(order="F")), nrow=a.shape[0],
                                  ncol=a.shape[1], dimnames=dimnames)

        def vector(v):
            out = ro.FloatVector(np.asarray(v, dtype=np.float64))
            out.names = ro.StrVector(genes)
            return out

        with _LOCK:
            res = fn(matrix(inp.pred), matrix(inp.real), vector(inp.pred_control), vector(inp.real_control))
            values = np.array(list(ro.r["as.numeric"](res)), dtype=np.float64)
        if values.shape != (len(perts),):
            raise ValueError(
                f"R function {self.function!r} must return one number per perturbation "
                f"({len(perts)}); got {values.size}"
            )
        return values


def r_metric(source: str | None = None, *, file=None, function: str, name: str | None = None,
             higher_is_better: bool = True, best: float | None = None, validate: bool = True):
    """Wrap an R function as a simpert metric.

    Parameters
    ----------
    source : str, optional
        R source text defining the function. Give exactly one of ``source`` and ``file``.
    file : str or path, optional
        An R file defining the function (its text is read now and travels with the metric).
    function : str
        Name of the R function: ``function(pred, real, pred_control, real_control)``
        returning one number per row of ``pred`` (see the module docstring).
    name : str, optional
        Metric name; default ``function``.
    higher_is_better : bool, default True
        Orientation.
    best : float, optional
        Value of a perfect prediction (needed for the dynamic range fraction).
    validate : bool, default True
        Parse the source in this process now and check that ``function`` is an R
        function there (starts R here).

    Returns
    -------
    simpert.metrics.Metric
        Its ``fn`` is an :class:`RFunction`.

    Examples
    --------
    >>> m = r_metric("f <- function(pred, real, pc, rc) rowMeans(abs(pred - real))",
    ...              function="f", higher_is_better=False, best=0.0)  # doctest: +SKIP
    """
    from simpert.metrics import Metric

    if (source is None) == (file is None):
        fail("source", "given exactly when 'file' is not (one of the two)",
             "both" if source is not None else None)
    if file is not None:
        path = Path(os.fspath(file)).expanduser()
        if not path.is_file():
            fail("file", "an existing R file", str(file))
        source = path.read_text()
    check("source", source, Instance((str,), "a string of R code"))
    check("function", function, Instance((str,), "a string naming an R function"))
    check("name", name, Instance((str, type(None)), "a string or None"))
    check("higher_is_better", higher_is_better, Instance((bool,), "True or False"))
    fn = RFunction(source, function)
    if validate:
        fn.closure()
    return Metric(
        name=name or function,
        fn=fn,
        higher_is_better=higher_is_better,
        best=best,
        needs=frozenset({"profiles"}),
        description=f"R function {function}",
        source="R",
    )
