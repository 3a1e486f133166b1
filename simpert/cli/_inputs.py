"""Turning command-line arguments into simpert objects: scenarios, screens and metrics."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import re
import sys
from pathlib import Path

from ._common import CLIError

__all__ = [
    "parse_sets",
    "resolve_scenario",
    "simulate_scenario",
    "read_screen",
    "resolve_metric",
    "metric_names",
    "UserFunction",
]


def _did_you_mean(spec: str, known) -> str:
    """`` (did you mean a, b?)`` for the closest known names, or an empty string."""
    close = difflib.get_close_matches(spec, list(known), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""

_SET_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)


def parse_sets(items: list[str] | None) -> dict:
    """Parse ``--set key=value`` items; values are JSON when they parse, else strings.

    Parameters
    ----------
    items : list of str
        Items of the form ``key=value`` (``n_genes=200``, ``mode="crispri"``,
        ``p_effect=0.05``, ``gene_means=[1,2,3]``).

    Returns
    -------
    dict
    """
    out = {}
    for item in items or []:
        m = _SET_RE.match(item)
        if not m:
            raise CLIError(f"option '--set' must look like key=value; got {item!r}")
        key, raw = m.groups()
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            low = raw.strip().lower()
            value = {"true": True, "false": False, "none": None}.get(low, raw)
        out[key] = value
    return out


def resolve_scenario(spec: str, overrides: dict | None = None):
    """Return the :class:`simpert.calibrate.Scenario` named or stored at ``spec``.

    Parameters
    ----------
    spec : str
        A scenario name, a TOML file, or a JSON file in the TOML layout.
    overrides : dict, optional
        Simulator parameters replacing the scenario's.

    Returns
    -------
    Scenario
    """
    from dataclasses import replace

    from simpert.calibrate import load_scenario
    from simpert.calibrate._scenarios import Scenario, list_scenarios

    path = Path(spec).expanduser()
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise CLIError(f"scenario file {spec!r} does not exist")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise CLIError(f"scenario file {spec!r} is not valid JSON: {err}") from None
        scenario = Scenario.from_dict(data, source=str(path), name=path.stem)
    elif path.suffix.lower() == ".toml" or path.exists():
        if not path.is_file():
            raise CLIError(f"scenario file {spec!r} does not exist")
        scenario = load_scenario(path)
    else:
        known = list_scenarios()
        if spec not in known:
            raise CLIError(f"unknown scenario {spec!r}{_did_you_mean(spec, known)}; known scenarios: {', '.join(known)} "
                           "(or give a path to a .toml file)")
        scenario = load_scenario(spec)
    if overrides:
        params = scenario.params_dict()
        params.update(overrides)
        scenario = replace(scenario, params=params)
    return scenario


def simulate_scenario(scenario, *, seed: int):
    """Draw one screen of ``scenario`` with seed ``seed`` (as the calibration harness does).

    Parameters
    ----------
    scenario : Scenario
    seed : int

    Returns
    -------
    AnnData
    """
    import numpy as np

    from simpert.calibrate._pipeline import default_simulate

    return default_simulate(scenario, rng=np.random.SeedSequence(int(seed)))


def read_screen(path: str | Path):
    """Read a screen from an ``.h5ad`` file, a simpert MatrixMarket directory or a Zarr store.

    A ``.zarr`` store of cells is read as its pseudobulk (perturbation x replicate), summed
    by chunks of cells, so that a screen larger than memory can go to ``simpert de``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    AnnData
    """
    from ._mtx import is_mtx_dir, read_mtx_dir

    path = Path(path)
    if not path.exists():
        raise CLIError(f"input {str(path)!r} does not exist")
    if path.suffix.lower() == ".zarr":
        from simpert.sim import pseudobulk_zarr

        return pseudobulk_zarr(path, client="serial")  # summed by chunks: the cells are never loaded
    if path.is_dir():
        if not is_mtx_dir(path):
            raise CLIError(f"input directory {str(path)!r} holds no counts.mtx "
                           "(expected a directory written by 'simpert simulate --format mtx')")
        return read_mtx_dir(path)
    if path.suffix.lower() != ".h5ad":
        raise CLIError(f"input {str(path)!r} must be an .h5ad file or a MatrixMarket directory")
    import anndata as ad

    try:
        return ad.read_h5ad(path)
    except OSError as err:
        raise CLIError(f"input {str(path)!r} is not a readable .h5ad file: {err}") from None


def metric_names() -> list[str]:
    """Names of the registered metrics."""
    from simpert import metrics

    return sorted(metrics.registry)


class UserFunction:
    """A user's Python function named by file or module, loadable in any process.

    Pickling keeps only where the function is (a file path, or a module name and the
    directory it was imported from), so worker processes of joblib or Dask load it
    themselves: a function defined in a file works with every executor and worker count.

    Parameters
    ----------
    where : str
        ``file.py`` (a path) or a module name.
    func : str
        Name of the function in it.
    """

    _cache: dict = {}

    def __init__(self, where: str, func: str):
        self.is_file = where.endswith(".py")
        self.where = str(Path(where).resolve()) if self.is_file else where
        self.func = func
        self.root = str(Path.cwd())
        self.__name__ = func
        fn = self._load()
        for attr in ("higher_is_better", "best"):
            if hasattr(fn, attr):
                setattr(self, attr, getattr(fn, attr))

    def _load(self):
        key = (self.is_file, self.where, self.func)
        fn = self._cache.get(key)
        if fn is not None:
            return fn
        spec_text = f"{self.where}:{self.func}"
        if self.is_file:
            path = Path(self.where)
            if not path.is_file():
                raise CLIError(f"metric file {self.where!r} does not exist")
            name = f"_simpert_user_metric_{abs(hash(self.where))}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as err:
                sys.modules.pop(name, None)
                raise CLIError(f"metric file {self.where!r} failed to import: {type(err).__name__}: {err}") from None
        else:
            if self.root not in sys.path:
                sys.path.insert(0, self.root)
            try:
                module = importlib.import_module(self.where)
            except ImportError as err:
                raise CLIError(f"metric module {self.where!r} cannot be imported: {err}") from None
        fn = getattr(module, self.func, None)
        if fn is None:
            raise CLIError(f"metric module {self.where!r} has no function {self.func!r}")
        if not callable(fn):
            raise CLIError(f"{spec_text} is not callable")
        self._cache[key] = fn
        return fn

    def __call__(self, *args, **kwargs):
        return self._load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"UserFunction({self.where!r}, {self.func!r})"


def resolve_metric(spec: str, *, higher_is_better: bool = True, best: float | None = None):
    """Turn a ``--metric`` value into what ``calibrate``/``score`` accept.

    Parameters
    ----------
    spec : str
        ``NAME`` (a registered metric), ``module:function`` or ``file.py:function`` (a
        Python callable ``fn(inp) -> array of shape (P,)``), or ``file.R:function`` (an R
        function, called through rpy2).
    higher_is_better : bool, default True
        Orientation of a user metric (ignored for registered names).
    best : float, optional
        Best attainable value of a user metric.

    Returns
    -------
    str or Metric
        The name for a registered metric, otherwise a :class:`simpert.metrics.Metric`.
    """
    spec = spec.strip()
    if ":" not in spec:
        known = metric_names()
        if spec not in known:
            raise CLIError(f"unknown metric {spec!r}{_did_you_mean(spec, known)}; run 'simpert metrics' for the list, "
                           "or give module:function or file.R:function")
        return spec
    left, _, func = spec.rpartition(":")
    if not left or not func.isidentifier() and not re.match(r"^[A-Za-z.][A-Za-z0-9._]*$", func):
        raise CLIError(f"metric {spec!r} must be NAME, module:function or file.R:function")
    if left.lower().endswith(".r"):
        return _r_metric(left, func, higher_is_better=higher_is_better, best=best)
    from simpert.metrics import Metric

    if left.endswith(".py") and not Path(left).is_file():
        raise CLIError(f"metric file {left!r} does not exist")
    fn = UserFunction(left, func)
    return Metric(name=func, fn=fn, higher_is_better=higher_is_better, best=best,
                  description=f"user metric {spec}", source="user")


def _r_metric(path: str, func: str, *, higher_is_better: bool, best: float | None):
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"R metric file {path!r} does not exist")
    from simpert.calibrate import r_metric

    return r_metric(file=p, function=func, higher_is_better=higher_is_better, best=best)
