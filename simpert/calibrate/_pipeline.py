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

__all__ = ["Pipeline", "default_simulate", "default_lookup"]


def default_simulate(scenario, *, rng):
    """Draw one screen of ``scenario`` with :mod:`simpert.sim`.

    Parameters
    ----------
    scenario : Scenario
        ``kind`` picks ``screen`` (with ``ScreenParams``), ``noise_only`` or
        ``var_network``; ``params`` are their keyword arguments (or a parameter object).
    rng : SeedSequence
        Seed of this draw.

    Returns
    -------
    AnnData
    """
    from simpert import sim

    params = scenario.params
    if scenario.kind == "screen":
        if isinstance(params, Mapping):
            params = sim.ScreenParams(**params)
        return sim.screen(params, rng=rng)
    if scenario.kind == "noise_only":
        if isinstance(params, Mapping):
            params = sim.NoiseOnlyParams(**params)
        return sim.noise_only(params, rng=rng)
    return _simulate_var(sim, params, rng)


_NETWORK_MODELS = ("erdos_renyi", "scale_free")


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
