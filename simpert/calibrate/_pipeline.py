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
    fn = getattr(sim, scenario.kind)
    if isinstance(params, Mapping):
        return fn(**params, rng=rng)
    return fn(params, rng=rng)


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
