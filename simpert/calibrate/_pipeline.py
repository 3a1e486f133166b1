"""The four steps of one calibration task, replaceable for testing or extension.

A :class:`Pipeline` names the functions that simulate a scenario, split it, build the
predictions and score them. Each field left as None uses simpert's own function
(``simpert.sim``, ``simpert.predict.split``, ``simpert.predict.make``,
``simpert.metrics.score`` and the metric registry). Replacements must be picklable
(module-level functions) so that the joblib and Dask executors can ship them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .._validation import fail

__all__ = ["Pipeline", "default_simulate", "default_lookup", "planted_controls", "STAND_IN_SEED"]

#: Seed of the simulator's control cells that stand in for real ones in a planted scenario
#: without a ``controls`` file (the same cells for every replicate and every run).
STAND_IN_SEED = 20251203


def default_simulate(scenario, *, rng):
    """Draw one screen of ``scenario`` with :mod:`simpert.sim`.

    Parameters
    ----------
    scenario : Scenario
        ``kind`` picks ``screen`` (with ``ScreenParams``), ``noise_only``,
        ``var_network`` or ``planted`` (:func:`simpert.sim.plant` with ``duplicate=True``
        on the cells of :func:`planted_controls`); ``params`` are their keyword arguments
        (or a parameter object).
    rng : SeedSequence
        Seed of this draw.

    Returns
    -------
    AnnData
    """
    from simpert import sim

    params = scenario.params
    if scenario.kind == "planted":
        return _simulate_planted(sim, scenario, rng)
    if scenario.kind == "screen":
        if isinstance(params, Mapping):
            params = sim.ScreenParams(**params)
        return sim.screen(params, rng=rng, output=getattr(scenario, "output", "cells"))
    if scenario.kind == "noise_only":
        if isinstance(params, Mapping):
            params = sim.NoiseOnlyParams(**params)
        return sim.noise_only(params, rng=rng)
    return _simulate_var(sim, params, rng)


_NETWORK_MODELS = ("erdos_renyi", "scale_free")
_PLANT_KEYS = ("controls", "layer", "stand_in", "stand_in_seed")
_CONTROL_CACHE: dict = {}


def planted_controls(scenario):
    """The control cells a ``kind = "planted"`` scenario plants its effects into.

    ``params["controls"]`` names them: an AnnData, a path to an ``.h5ad`` file (relative
    paths are read from the scenario file's folder), or ``"simulated"`` (the default): the
    control cells of ``simpert.sim.screen(n_perturbations=0, **params["stand_in"],
    rng=params.get("stand_in_seed", STAND_IN_SEED))``, which stand in for real cells so that
    a planted scenario runs without data. Files and stand-in cells are read or drawn once
    per process.

    Parameters
    ----------
    scenario : Scenario or mapping
        A planted scenario, or its ``params`` table.

    Returns
    -------
    AnnData
        The control cells (counts as given; ``params["layer"]`` says where).
    """
    import anndata as ad
    from pathlib import Path

    from simpert import sim

    source = getattr(scenario, "source", None)
    params = scenario.params if hasattr(scenario, "params") else scenario
    if not isinstance(params, Mapping):
        fail("params", "a table of plant options for kind 'planted'", params, exc=TypeError)
    controls = params.get("controls", "simulated")
    if isinstance(controls, ad.AnnData):
        return controls
    if controls == "simulated":
        stand_in = dict(params.get("stand_in", {}) or {})
        seed = int(params.get("stand_in_seed", STAND_IN_SEED))
        stand_in.setdefault("n_control_cells", 2000)
        stand_in["n_perturbations"] = 0
        key = ("simulated", seed, tuple(sorted((k, repr(v)) for k, v in stand_in.items())))
        if key not in _CONTROL_CACHE:
            _CONTROL_CACHE[key] = sim.screen(sim.ScreenParams(**stand_in), rng=seed)
        return _CONTROL_CACHE[key]
    if not isinstance(controls, str):
        fail("controls", "an AnnData, a path to an .h5ad file of control cells or 'simulated'", controls,
             exc=TypeError)
    path = Path(controls).expanduser()
    if not path.is_absolute() and source is not None:
        path = Path(source).resolve().parent / path
    if not path.is_file():
        fail("controls", "an existing .h5ad file of control cells or 'simulated'", str(path))
    key = ("file", str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _CONTROL_CACHE:
        _CONTROL_CACHE[key] = ad.read_h5ad(path)
    return _CONTROL_CACHE[key]


def _simulate_planted(sim, scenario, rng):
    """``planted`` scenario: plant a screen (with its duplicate) into the scenario's controls."""
    params = scenario.params
    if not isinstance(params, Mapping):
        fail("params", "a table of plant options for kind 'planted'", params, exc=TypeError)
    controls = planted_controls(scenario)
    options = {k: v for k, v in params.items() if k not in _PLANT_KEYS}
    return sim.plant(controls, layer=params.get("layer"), duplicate=True, rng=rng, **options)


def _simulate_var(sim, params, rng):
    """``var_network`` scenario: build the network, pick the perturbed genes, simulate.

    ``params`` holds a ``network`` table (``model`` = "erdos_renyi" with ``n_genes``, ``p``
    or "scale_free" with ``n_genes``, ``m``; optional ``signed``), optionally
    ``n_perturbed`` (perturb the genes of largest out-degree; default all genes), and the
    fields of ``simpert.sim.NetworkParams`` (``steps = "steady"`` for the steady state).
    """
    if not isinstance(params, Mapping):
        fail("params", "a table with a 'network' entry for kind 'var_network'", params, exc=TypeError)
    params = dict(params)
    net = dict(params.pop("network", {}) or {})
    n_perturbed = params.pop("n_perturbed", None)
    model = net.pop("model", None)
    if model not in _NETWORK_MODELS:
        fail("network.model", "one of " + ", ".join(repr(m) for m in _NETWORK_MODELS), model)
    if params.get("steps") == "steady":  # TOML has no null: "steady" asks for the steady state
        params["steps"] = None
    net_ss, sim_ss = rng.spawn(2)
    network = getattr(sim, model)(**net, rng=net_ss)
    perturb = "all"
    if n_perturbed is not None:
        out_degree = np.asarray((network.weights != 0).sum(axis=1)).ravel()
        order = np.argsort(-out_degree, kind="stable")[: int(n_perturbed)]
        perturb = [network.genes[i] for i in np.sort(order)]
    return sim.var_network(network, sim.NetworkParams(**params), perturb=perturb, rng=sim_ss)


def default_lookup(name: str):
    """The registered :class:`simpert.metrics.Metric` called ``name``."""
    from simpert import metrics

    return metrics.get(name)


def _default_split(adata, *, test_fraction, rng):
    from simpert import predict

    return predict.split(adata, test_fraction=test_fraction, rng=rng)


def _default_make(adata, split, predictors, *, rng, cells=False):
    from simpert import predict

    return predict.make(adata, split, predictors, rng=rng, cells=cells)


def _default_score(preds, adata, split, *, metrics, **options):
    from simpert import metrics as _m

    return _m.score(preds, adata, split, metrics=metrics, **options)


def _default_all_metrics() -> list:
    from simpert import metrics

    # descriptors of the data (higher_is_better None) score no prediction: not calibrated
    return [name for name, m in metrics.registry.items() if m.higher_is_better is not None]


@dataclass(frozen=True)
class Pipeline:
    """Functions one calibration task calls, in order.

    Parameters
    ----------
    simulate : callable, optional
        ``simulate(scenario, *, rng) -> AnnData``. Default :func:`default_simulate`.
    split : callable, optional
        ``split(adata, *, test_fraction, rng) -> Split``. Default ``simpert.predict.split``.
    make : callable, optional
        ``make(adata, split, predictor_names, *, rng) -> Predictions``; called with
        ``cells=True`` as well when a metric needs cells or DE tables. Default
        ``simpert.predict.make``.
    score : callable, optional
        ``score(preds, adata, split, *, metrics, **options) -> DataFrame`` with columns
        ``predictor``, ``perturbation``, ``metric``, ``value``. Default
        ``simpert.metrics.score``.
    lookup : callable, optional
        ``lookup(name) -> Metric``: resolves a metric name (its orientation and best value
        are read from the result). Default: ``simpert.metrics.registry``.
    all_metrics : callable, optional
        ``all_metrics() -> list of names``: what ``metrics="all"`` means. Default: every
        registered metric that has an orientation (descriptors such as
        ``systematic_variation`` are left out).
    """

    simulate: Callable | None = None
    split: Callable | None = None
    make: Callable | None = None
    score: Callable | None = None
    lookup: Callable | None = None
    all_metrics: Callable | None = None

    def resolved(self) -> "Pipeline":
        """A copy with every None replaced by simpert's own function."""
        return Pipeline(
            simulate=self.simulate or default_simulate,
            split=self.split or _default_split,
            make=self.make or _default_make,
            score=self.score or _default_score,
            lookup=self.lookup or default_lookup,
            all_metrics=self.all_metrics or _default_all_metrics,
        )
