"""The calibration run: scenarios x replicates x predictors x metrics."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .._random import as_seed_sequence, seed_record
from .._validation import Instance, Integer, OneOf, check, fail
from ._executors import EXECUTORS, run_tasks
from ._pipeline import Pipeline
from ._results import ERROR_COLUMNS, TABLE_COLUMNS, CalibrationResult, MetricInfo
from ._scenarios import Scenario, list_scenarios, load_scenario

__all__ = ["calibrate", "MetricSpec", "with_options", "STANDARD_PREDICTORS", "LADDER_ALPHAS"]

#: Alphas of the standard ladder ``alpha * true delta + (1 - alpha) * mean-baseline delta``.
LADDER_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)

#: Predictors every calibration uses unless told otherwise.
STANDARD_PREDICTORS = (
    "oracle",
    "technical_duplicate",
    *(f"ladder({a:g})" for a in LADDER_ALPHAS),
    "mean",
    "control",
    "systematic_only",
    "target_only",
    "shuffled",
)


@dataclass(frozen=True)
class MetricSpec:
    """A metric with scoring options and a label (e.g. one reference point of a metric).

    Parameters
    ----------
    metric : str, Metric or callable
        A registered name, a :class:`simpert.metrics.Metric` (such as the result of
        :func:`simpert.calibrate.r_metric`) or a callable ``fn(inp) -> ndarray``.
    label : str, optional
        Name in the result tables; default the metric's name followed by the options,
        e.g. ``"pearson_delta[reference=perturbed_centroid]"``.
    options : dict, optional
        Keyword options passed to ``simpert.metrics.score`` (``target=``, ``reference=``,
        ``weights=``).
    """

    metric: Any
    label: str | None = None
    options: dict = field(default_factory=dict)


def with_options(metric, *, label: str | None = None, **options) -> MetricSpec:
    """Calibrate ``metric`` with scoring options, under its own label.

    Parameters
    ----------
    metric : str, Metric or callable
        The metric.
    label : str, optional
        Its name in the tables (default: name plus options).
    **options
        Passed to ``simpert.metrics.score`` (e.g. ``reference="perturbed_centroid"``).

    Returns
    -------
    MetricSpec

    Examples
    --------
    >>> spec = with_options("pearson_delta", reference="perturbed_centroid")
    >>> spec.options
    {'reference': 'perturbed_centroid'}
    """
    check("label", label, Instance((str, type(None)), "a string or None"))
    return MetricSpec(metric, label, dict(options))


@dataclass(frozen=True)
class _Resolved:
    label: str
    payload: Any  # a registered name (str) or a metric object / callable
    options: tuple  # sorted (key, value) pairs
    info: MetricInfo
    needs: frozenset = frozenset({"profiles"})


def _is_metric_object(m) -> bool:
    return all(hasattr(m, a) for a in ("name", "higher_is_better", "fn"))


def _resolve_one(m, pipeline: Pipeline, label=None, options=None) -> _Resolved:
    options = dict(options or {})
    if isinstance(m, MetricSpec):
        return _resolve_one(m.metric, pipeline, m.label if label is None else label, {**m.options, **options})
    if isinstance(m, tuple) and len(m) == 2 and isinstance(m[1], Mapping):
        return _resolve_one(m[0], pipeline, label, {**m[1], **options})
    if isinstance(m, str):
        obj = pipeline.lookup(m)
        name, payload = m, m
    elif _is_metric_object(m):
        obj, name, payload = m, str(m.name), m
    elif callable(m):
        obj = m
        name = str(getattr(m, "name", None) or getattr(m, "__name__", None) or type(m).__name__)
        payload = m
    else:
        fail("metrics", "a list of metric names, Metric objects, callables or MetricSpec", m, exc=TypeError)
    hib = bool(getattr(obj, "higher_is_better", True))
    best = getattr(obj, "best", None)
    best = None if best is None else float(best)
    if label is None:
        label = name if not options else name + "[" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) + "]"
    needs = frozenset(getattr(obj, "needs", None) or {"profiles"})
    return _Resolved(label, payload, tuple(sorted(options.items())), MetricInfo(label, hib, best), needs)


def _resolve_metrics(metrics, pipeline: Pipeline) -> list[_Resolved]:
    if isinstance(metrics, str) and metrics == "all":
        metrics = pipeline.all_metrics()
    elif isinstance(metrics, (str, MetricSpec)) or callable(metrics) or _is_metric_object(metrics):
        metrics = [metrics]
    if not isinstance(metrics, Sequence) or isinstance(metrics, str) or len(metrics) == 0:
        fail("metrics", "a non-empty list of metrics or 'all'", metrics)
    out = [_resolve_one(m, pipeline) for m in metrics]
    seen = set()
    for r in out:
        if r.label in seen:
            fail("metrics", "a list with distinct labels (use with_options(..., label=...))", r.label)
        seen.add(r.label)
    return out


def _resolve_scenarios(scenarios) -> list[Scenario]:
    if isinstance(scenarios, str) and scenarios in ("all", "standard"):
        scenarios = list_scenarios()
    elif isinstance(scenarios, (str, Scenario, Mapping)) or not isinstance(scenarios, Sequence):
        scenarios = [scenarios]
    if len(scenarios) == 0:
        fail("scenarios", "a non-empty list of scenarios or 'all'", scenarios)
    out = [load_scenario(s) for s in scenarios]
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        fail("scenarios", "a list of scenarios with distinct names", dup)
    return out


def _limit_threads():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on environment
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _metric_name(payload) -> str:
    """The name under which ``score`` reports a metric given as ``payload``."""
    if isinstance(payload, str):
        return payload
    name = getattr(payload, "name", None)
    if isinstance(name, str):
        return name
    return getattr(payload, "__name__", None) or type(payload).__name__


def _score_frame(pipeline, preds, adata, split, payloads, options):
    df = pipeline.score(preds, adata, split, metrics=list(payloads), **dict(options))
    missing = set(("predictor", "perturbation", "metric", "value")) - set(df.columns)
    if missing:
        raise ValueError(f"score returned a table without columns {sorted(missing)}")
    return df


def _run_task(scenario: Scenario, replicate: int, seed: tuple, predictors: tuple,
              metrics: tuple, pipeline: Pipeline):
    """One (scenario, replicate): simulate, split, predict, score every metric.

    Returns the tidy scores and a list of (metric, scenario, replicate, message) for the
    metrics that raised.
    """
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    entropy, spawn_key = seed
    ss = np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key))
    sim_ss, split_ss, pred_ss = ss.spawn(3)
    frames, errors = [], []
    with _limit_threads():
        try:
            adata = pipeline.simulate(scenario, rng=sim_ss)
            split = pipeline.split(adata, test_fraction=scenario.test_fraction, rng=split_ss)
            # predicted cells are built only when a metric needs cells or DE tables
            if any(r.needs & {"cells", "de"} for r in metrics):
                preds = pipeline.make(adata, split, list(predictors), rng=pred_ss, cells=True)
            else:
                preds = pipeline.make(adata, split, list(predictors), rng=pred_ss)
        except Exception as err:  # noqa: BLE001 - the scenario fails, the other tasks go on
            message = f"scenario failed: {type(err).__name__}: {err}"
            errors = [(r.label, scenario.name, replicate, message) for r in metrics]
            timing = (scenario.name, int(replicate), time.perf_counter() - t_wall, time.process_time() - t_cpu)
            return pd.DataFrame({c: [] for c in TABLE_COLUMNS}), errors, timing
        # Registered names sharing options are scored together (shared work is done once);
        # when that fails, each is scored alone so that one failure does not hide the rest.
        groups: dict[tuple, list[_Resolved]] = {}
        singles = []
        for r in metrics:
            (groups.setdefault(r.options, []) if isinstance(r.payload, str) else singles).append(r)
        jobs = [g for g in groups.values()] + [[r] for r in singles]
        for group in jobs:
            try:
                df = _score_frame(pipeline, preds, adata, split, [r.payload for r in group], group[0].options)
                labels = {_metric_name(r.payload): r.label for r in group}
                seen = set()
                for f in df.attrs.get("errors") or []:
                    if f["metric"] not in seen:
                        seen.add(f["metric"])
                        errors.append((labels.get(f["metric"], f["metric"]), scenario.name, replicate, f["message"]))
                df.attrs.pop("errors", None)
                if len(group) == 1:
                    df = df.assign(metric=group[0].label)
                else:
                    df = df.assign(metric=df["metric"].map(labels))
                frames.append(df)
            except Exception as err:  # noqa: BLE001 - reported per metric
                if len(group) == 1:
                    errors.append((group[0].label, scenario.name, replicate, f"{type(err).__name__}: {err}"))
                    continue
                for r in group:
                    try:
                        df = _score_frame(pipeline, preds, adata, split, [r.payload], r.options)
                        frames.append(df.assign(metric=r.label))
                    except Exception as err1:  # noqa: BLE001
                        errors.append((r.label, scenario.name, replicate, f"{type(err1).__name__}: {err1}"))
    order = {r.label: i for i, r in enumerate(metrics)}
    if frames:
        table = pd.concat(frames, ignore_index=True)
        table = table.assign(scenario=scenario.name, replicate=int(replicate))
        table["_order"] = table["metric"].map(order)
        table = table.sort_values("_order", kind="stable").drop(columns="_order")
        table = table[list(TABLE_COLUMNS)].reset_index(drop=True)
        table["value"] = table["value"].astype(np.float64)
    else:
        table = pd.DataFrame({c: [] for c in TABLE_COLUMNS})
    timing = (scenario.name, int(replicate), time.perf_counter() - t_wall, time.process_time() - t_cpu)
    return table, errors, timing


def calibrate(
    metrics,
    scenarios,
    predictors=None,
    *,
    n_replicates: int = 10,
    rng=None,
    executor: str = "joblib",
    n_jobs: int | None = None,
    client=None,
    pipeline: Pipeline | None = None,
) -> CalibrationResult:
    """Score predictors of known quality with each metric on simulated screens.

    For every scenario and replicate, one task simulates a screen, splits its
    perturbations, builds every predictor's prediction and scores them with every
    metric. The summary (``result.summary()``) then says whether each metric rewards what
    it should.

    Parameters
    ----------
    metrics : list or "all"
        Each entry a registered metric name, a :class:`simpert.metrics.Metric` (e.g. from
        :func:`r_metric`), a Python callable ``fn(inp: MetricInput) -> ndarray`` (its
        ``higher_is_better`` and ``best`` attributes are read when present; defaults True
        and None), a :class:`MetricSpec` from :func:`with_options`, or a
        ``(metric, options_dict)`` pair. ``"all"`` means every registered metric.
    scenarios : list or "all"
        Scenario names, TOML paths, dicts, :class:`Scenario` objects or simulator
        parameter objects (see :func:`load_scenario`); ``"all"`` means every scenario
        file :func:`list_scenarios` finds.
    predictors : list of str, optional
        Predictor names for ``simpert.predict.make``. Default :data:`STANDARD_PREDICTORS`
        (oracle, technical duplicate, ladder at alpha 0, .25, .5, .75, 1, mean, control,
        systematic-only, target-only, shuffled). The summary needs these names.
    n_replicates : int, default 10
        Independent screens per scenario.
    rng : None, int, SeedSequence or Generator
        Seed of the run. Replicate ``r`` of every scenario uses the same child
        SeedSequence (spawned in replicate order), so scenarios are compared on paired
        draws; within a task the simulation, the split and the predictors get their own
        children. The same seed gives the same table with every executor and worker count.
    executor : {"joblib", "serial", "dask"}, default "joblib"
        Where the tasks run (see ``simpert.calibrate.run_tasks``).
    n_jobs : int, optional
        Worker processes (joblib, or the Dask LocalCluster started when no client is
        given). Default: every CPU available.
    client : distributed.Client or str, optional
        Dask only: a client or a scheduler address.
    pipeline : Pipeline, optional
        Replacement steps (simulate, split, make, score, metric lookup); default
        simpert's own.

    Returns
    -------
    CalibrationResult
        ``.table`` (scenario, replicate, predictor, perturbation, metric, value),
        ``.errors`` (metrics that raised, per scenario; the rest of the run is kept) and
        ``.summary()``.

    Examples
    --------
    >>> cal = calibrate(["pearson_delta"], ["noise_only", "sparse_strong"],
    ...                 n_replicates=2, rng=0, executor="serial")  # doctest: +SKIP
    >>> cal.summary()  # doctest: +SKIP
    """
    check("n_replicates", n_replicates, Integer(1))
    check("executor", executor, OneOf(EXECUTORS))
    check("n_jobs", n_jobs, Integer(1, allow_none=True))
    check("pipeline", pipeline, Instance((Pipeline, type(None)), "a simpert.calibrate.Pipeline or None"))
    pipeline = (pipeline or Pipeline()).resolved()
    if predictors is None:
        predictors = STANDARD_PREDICTORS
    if isinstance(predictors, str) or not isinstance(predictors, Sequence) or not predictors \
            or not all(isinstance(p, str) for p in predictors):
        fail("predictors", "a non-empty list of predictor names", predictors)
    predictors = tuple(predictors)
    specs = tuple(_resolve_metrics(metrics, pipeline))
    scens = _resolve_scenarios(scenarios)
    root = as_seed_sequence(rng)
    children = root.spawn(n_replicates)
    seeds = [(c.entropy, tuple(c.spawn_key)) for c in children]
    tasks = [(s, r, seeds[r], predictors, specs, pipeline) for s in scens for r in range(n_replicates)]
    t0 = time.perf_counter()
    results = run_tasks(_run_task, tasks, executor=executor, n_jobs=n_jobs, client=client)
    wall = time.perf_counter() - t0
    tables = [t for t, _, _ in results if len(t)]
    if tables:
        table = pd.concat(tables, ignore_index=True)
    else:
        table = pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object) for c in TABLE_COLUMNS})
    table["replicate"] = table["replicate"].astype(np.int64)
    errs = [e for _, el, _ in results for e in el]
    timings = pd.DataFrame([tm for _, _, tm in results], columns=["scenario", "replicate", "wall_s", "cpu_s"])
    if errs:
        raw = pd.DataFrame(errs, columns=["metric", "scenario", "replicate", "message"])
        errors = (raw.groupby(["metric", "scenario"], sort=False)
                  .agg(n_failed=("replicate", "size"), message=("message", "first"))
                  .reset_index())[list(ERROR_COLUMNS)]
    else:
        errors = pd.DataFrame({c: pd.Series(dtype=object) for c in ERROR_COLUMNS})
    return CalibrationResult(
        table=table,
        errors=errors,
        metrics={r.label: r.info for r in specs},
        scenarios={s.name: s for s in scens},
        predictors=predictors,
        n_replicates=n_replicates,
        seed=seed_record(root),
        executor=executor,
        wall_time=wall,
        timings=timings,
    )
