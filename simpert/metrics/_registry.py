"""The metric registry: one :class:`Metric` object per named metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from .._validation import Callable_, Instance, OneOf, check

__all__ = ["Metric", "NEEDS", "registry", "register", "get", "list_metrics"]

#: What a metric may need besides the pseudobulk profiles of the test perturbations.
NEEDS = frozenset({"profiles", "cells", "real_cells", "de", "train"})

_TARGETS = ("include", "exclude", "pairwise", "reveal")
_REFERENCES = ("control", "centroid", "centroid_all")


@dataclass(frozen=True)
class Metric:
    """A named evaluation metric with one calling signature.

    Parameters
    ----------
    name : str
        Registry key.
    fn : callable
        ``fn(inp: MetricInput) -> ndarray of shape (P,)``: one value per test perturbation,
        in the order of ``inp.perturbations``. A metric defined once per set of
        perturbations (``per_set=True``) returns its single value repeated P times.
    higher_is_better : bool or None
        Orientation; None for descriptors of the data that do not score a prediction.
    best : float or None
        Value a perfect prediction attains (None when there is no fixed best value).
    needs : frozenset of str
        Subset of ``{"profiles", "cells", "real_cells", "de", "train"}``: "cells" needs
        the observed and the predicted cells, "real_cells" the observed cells only.
    description : str
        One line saying what the metric computes and where it comes from.
    source : str
        The tool or paper that defines it ("cell-eval", "PEREGGRN", "Systema", ...).
    target : str
        Native target-gene handling, used when :func:`simpert.metrics.score` is called with
        ``target=None``: "include", "exclude" (one-sided), "pairwise" or "reveal".
    reference : str or None
        Native reference point for deltas: "control", "centroid" (mean of the training
        perturbations' profiles) or "centroid_all" (mean of every perturbation's profile,
        the test ones included); None when the metric does not use one.
    per_set : bool
        True when the metric has one value per set of perturbations (broadcast to all).
    uses_weights : bool
        True when the metric reads gene weights (``inp.weights``), resolved from the
        ``weights`` option of :func:`simpert.metrics.score`.
    weights : str or None
        Native source of gene weights ("train" or "all") used when ``score`` is called
        with ``weights=None``; None for metrics without weights.
    """

    name: str
    fn: Callable
    higher_is_better: bool | None = True
    best: float | None = None
    needs: frozenset = field(default_factory=lambda: frozenset({"profiles"}))
    description: str = ""
    source: str = "user"
    target: str = "include"
    reference: str | None = None
    per_set: bool = False
    uses_weights: bool = False
    weights: str | None = None

    def __post_init__(self):
        check("name", self.name, Instance((str,), label="a non-empty string"))
        if not self.name:
            raise ValueError("parameter 'name' must be a non-empty string; got ''")
        check("fn", self.fn, Callable_())
        check("higher_is_better", self.higher_is_better, OneOf((True, False, None)))
        needs = frozenset(self.needs)
        if not needs <= NEEDS:
            raise ValueError(
                f"parameter 'needs' must be a subset of {sorted(NEEDS)}; got {sorted(needs)}"
            )
        object.__setattr__(self, "needs", needs)
        check("target", self.target, OneOf(_TARGETS))
        check("reference", self.reference, OneOf(_REFERENCES + (None,)))
        check("weights", self.weights, OneOf(("train", "all", None)))

    def __call__(self, inp):
        """Evaluate the metric on a :class:`~simpert.metrics.MetricInput`."""
        return self.fn(inp)


#: Mapping metric name -> :class:`Metric` (all built-in metrics, plus registered ones).
registry: dict[str, Metric] = {}


def register(metric: Metric, *, overwrite: bool = False) -> Metric:
    """Add ``metric`` to the registry.

    Parameters
    ----------
    metric : Metric
        The metric to add.
    overwrite : bool, default False
        Replace an existing metric of the same name instead of raising.

    Returns
    -------
    Metric
        ``metric``, so that ``register`` can be used in expressions.
    """
    check("metric", metric, Instance((Metric,)))
    if metric.name in registry and not overwrite:
        raise ValueError(
            f"parameter 'metric' must have a name not yet registered; got {metric.name!r} "
            "(pass overwrite=True to replace it)"
        )
    registry[metric.name] = metric
    return metric


def get(name: str) -> Metric:
    """Return the registered metric called ``name``.

    Parameters
    ----------
    name : str
        Registry key.

    Returns
    -------
    Metric
    """
    if isinstance(name, Metric):
        return name
    if not isinstance(name, str):
        raise TypeError(f"parameter 'name' must be a metric name (str); got {type(name).__name__}")
    try:
        return registry[name]
    except KeyError:
        close = [k for k in registry if name.lower() in k.lower()][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(
            f"parameter 'metrics' must name registered metrics; got unknown metric {name!r}{hint}"
        ) from None


def list_metrics() -> pd.DataFrame:
    """Describe every registered metric.

    Returns
    -------
    DataFrame
        One row per metric (index: name) with columns ``source``, ``higher_is_better``,
        ``best``, ``needs``, ``target``, ``reference``, ``per_set``, ``uses_weights``,
        ``weights`` (native weight source), ``description``.
    """
    rows = [
        {
            "name": m.name,
            "source": m.source,
            "higher_is_better": m.higher_is_better,
            "best": m.best,
            "needs": ",".join(sorted(m.needs)),
            "target": m.target,
            "reference": m.reference,
            "per_set": m.per_set,
            "uses_weights": m.uses_weights,
            "weights": m.weights,
            "description": m.description,
        }
        for m in registry.values()
    ]
    return pd.DataFrame(rows).set_index("name")
