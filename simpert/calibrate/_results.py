"""Results of a calibration run and their summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import write_table_atomic, write_text_atomic
from .._validation import OneOf, check
from ._stats import STATISTICS, replicate_statistics

__all__ = ["MetricInfo", "CalibrationResult", "CalibrationSummary", "TABLE_COLUMNS", "ERROR_COLUMNS"]

#: Columns of :attr:`CalibrationResult.table`.
TABLE_COLUMNS = ("scenario", "replicate", "predictor", "perturbation", "metric", "value")
#: Columns of :attr:`CalibrationResult.errors`.
ERROR_COLUMNS = ("metric", "scenario", "n_failed", "message")

_STAT_LABELS = {
    "drf_mean": "DRF vs mean",
    "drf_control": "DRF vs control",
    "tau": "ladder tau",
    "auroc": "AUROC dup/mean",
    "null_level": "null level",
    "target_gain": "target gain",
    "systematic_gain": "systematic gain",
    "specificity": "specificity",
}


@dataclass(frozen=True)
class MetricInfo:
    """What the summary needs to know about a metric.

    Attributes
    ----------
    name : str
        Label of the metric in the tables.
    higher_is_better : bool
        Orientation.
    best : float or None
        Best attainable value (None when unknown: the DRF is then NaN).
    """

    name: str
    higher_is_better: bool = True
    best: float | None = None


@dataclass
class CalibrationResult:
    """Scores of every predictor under every metric on every simulated replicate.

    Attributes
    ----------
    table : DataFrame
        Tidy scores: ``scenario``, ``replicate``, ``predictor``, ``perturbation``,
        ``metric``, ``value``.
    errors : DataFrame
        One row per (metric, scenario) in which the metric raised: ``metric``,
        ``scenario``, ``n_failed`` (replicates), ``message`` (the first error). Those cells
        have no rows in ``table``; everything else was kept.
    metrics : dict
        Metric label -> :class:`MetricInfo`.
    scenarios : dict
        Scenario name -> :class:`~simpert.calibrate.Scenario`.
    predictors : tuple of str
        Predictor names in the order they were asked for.
    n_replicates : int
        Replicates per scenario.
    seed : dict
        Seed record of the run (see ``simpert._random.seed_record``).
    executor : str
        Where the tasks ran.
    wall_time : float
        Seconds the run took.
    timings : DataFrame
        Per task: ``scenario``, ``replicate``, ``wall_s`` and ``cpu_s`` (CPU seconds of the
        process that ran it: a load-independent measure of the work).
    """

    table: pd.DataFrame
    errors: pd.DataFrame
    metrics: dict
    scenarios: dict
    predictors: tuple
    n_replicates: int
    seed: dict = field(default_factory=dict)
    executor: str = "serial"
    wall_time: float = float("nan")
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> "CalibrationSummary":
        """Calibration statistics per metric and scenario.

        Returns
        -------
        CalibrationSummary
            Mean and standard error over replicates of each statistic of
            :data:`simpert.calibrate.STATISTICS` (definitions in
            :mod:`simpert.calibrate._stats`).
        """
        rows = []
        if len(self.table):
            for (metric, scenario, rep), grp in self.table.groupby(
                ["metric", "scenario", "replicate"], sort=False, observed=True
            ):
                info = self.metrics.get(metric, MetricInfo(metric))
                wide = grp.pivot_table(index="predictor", columns="perturbation", values="value",
                                       aggfunc="first", dropna=False)
                stats = replicate_statistics(wide, higher_is_better=info.higher_is_better, best=info.best)
                rows.append({"metric": metric, "scenario": scenario, "replicate": rep, **stats})
        per_rep = pd.DataFrame(rows, columns=["metric", "scenario", "replicate", *STATISTICS])
        long = per_rep.melt(id_vars=["metric", "scenario", "replicate"], var_name="statistic",
                            value_name="value")
        agg = (
            long.groupby(["metric", "scenario", "statistic"], sort=False)["value"]
            .agg(mean=lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan,
                 se=_se, n=lambda v: int(np.isfinite(v).sum()))
            .reset_index()
        )
        b = {name: sc.B for name, sc in self.scenarios.items()}
        agg["B"] = agg["scenario"].map(b).astype(float)
        metric_order = [m for m in self.metrics if m in set(agg["metric"])]
        scen_order = [s for s in self.scenarios if s in set(agg["scenario"])]
        return CalibrationSummary(agg, per_rep, metric_order, scen_order,
                                  {m: self.metrics[m] for m in metric_order}, self.errors.copy())

    def save(self, directory) -> Path:
        """Write ``table.parquet``, ``errors.csv`` and ``summary.csv`` into ``directory``.

        Parameters
        ----------
        directory : str or path
            Created if absent; files are written atomically.

        Returns
        -------
        Path
            The directory.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        write_table_atomic(self.table, d / "table.parquet")
        write_table_atomic(self.errors, d / "errors.csv")
        write_table_atomic(self.summary().long, d / "summary.csv")
        write_text_atomic(d / "seed.txt", repr(self.seed) + "\n")
        return d

    def __repr__(self) -> str:
        return (f"CalibrationResult({len(self.metrics)} metrics x {len(self.scenarios)} scenarios x "
                f"{self.n_replicates} replicates x {len(self.predictors)} predictors; "
                f"{len(self.table)} scores, {len(self.errors)} failed cells, executor={self.executor!r})")


def _se(v) -> float:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")


class CalibrationSummary:
    """Calibration statistics per metric and scenario (returned by ``CalibrationResult.summary``).

    Attributes
    ----------
    long : DataFrame
        ``metric``, ``scenario``, ``statistic``, ``mean``, ``se``, ``n`` (replicates with a
        finite value), ``B`` (the scenario's systematic strength, NaN if not stated).
    per_replicate : DataFrame
        One row per metric, scenario and replicate, one column per statistic.
    metrics : list of str
        Metric labels in run order.
    scenarios : list of str
        Scenario names in run order.
    info : dict
        Metric label -> :class:`MetricInfo`.
    errors : DataFrame
        The run's failed (metric, scenario) cells.
    """

    def __init__(self, long, per_replicate, metrics, scenarios, info, errors):
        self.long = long
        self.per_replicate = per_replicate
        self.metrics = list(metrics)
        self.scenarios = list(scenarios)
        self.info = dict(info)
        self.errors = errors

    @property
    def table(self) -> pd.DataFrame:
        """Wide table: one row per (metric, scenario), one column per statistic (means)."""
        wide = self.long.pivot_table(index=["metric", "scenario"], columns="statistic", values="mean",
                                     aggfunc="first", dropna=False, sort=False)
        wide = wide.reindex(columns=list(STATISTICS))
        order = pd.MultiIndex.from_tuples(
            [(m, s) for m in self.metrics for s in self.scenarios if (m, s) in wide.index],
            names=["metric", "scenario"])
        wide = wide.reindex(order)
        wide.columns.name = None
        return wide

    def stat(self, statistic: str, *, value: str = "mean") -> pd.DataFrame:
        """One statistic as a metric x scenario table.

        Parameters
        ----------
        statistic : str
            One of :data:`simpert.calibrate.STATISTICS`.
        value : {"mean", "se", "n"}, default "mean"
            Which aggregate to show.

        Returns
        -------
        DataFrame
            Rows: metrics (run order); columns: scenarios (run order).
        """
        check("statistic", statistic, OneOf(STATISTICS))
        check("value", value, OneOf(("mean", "se", "n")))
        sub = self.long[self.long["statistic"] == statistic]
        out = sub.pivot_table(index="metric", columns="scenario", values=value, aggfunc="first",
                              dropna=False)
        return out.reindex(index=self.metrics, columns=self.scenarios)

    def metric(self, name: str) -> pd.DataFrame:
        """All statistics of one metric: scenario x statistic (means)."""
        check("metric", name, OneOf(tuple(self.metrics)))
        return self.table.loc[name]

    def verdict(self, name: str) -> str:
        """One line judging a metric from its statistics (see ``simpert.pl.calibration_card``).

        Parameters
        ----------
        name : str
            Metric label.

        Returns
        -------
        str
            ``"<metric>: <GOOD|MIXED|POOR> - <reasons>"``. Checks: ladder tau >= 0.8 and
            AUROC >= 0.8 on signal scenarios, median DRF vs the mean baseline > 0.2, null
            level on noise-only data < 0.5, target gain below specificity.
        """
        t = self.metric(name)
        signal = [s for s in t.index if s != "noise_only"]
        noise = [s for s in t.index if s == "noise_only"]
        sig = t.loc[signal] if signal else t

        def med(col, frame=sig):
            v = frame[col].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            return float(np.median(v)) if v.size else float("nan")

        tau, auc, dm = med("tau"), med("auroc"), med("drf_mean")
        null = med("null_level", t.loc[noise]) if noise else float("nan")
        tgain, spec = med("target_gain"), med("specificity")
        issues, fine = [], []
        for label, val, ok in (
            ("ladder tau", tau, lambda v: v >= 0.8),
            ("AUROC", auc, lambda v: v >= 0.8),
            ("DRF vs mean", dm, lambda v: v > 0.2),
            ("noise-only null level", null, lambda v: v < 0.5),
        ):
            if np.isfinite(val):
                (fine if ok(val) else issues).append(f"{label} {val:.2f}")
        if np.isfinite(tgain) and np.isfinite(spec):
            if tgain > 0 and (spec <= 0 or tgain >= 0.5 * spec):
                issues.append(f"target gene alone earns {tgain:.2g} (oracle vs shuffled {spec:.2g})")
            else:
                fine.append("target gene alone earns little")
        grade = "GOOD" if not issues and fine else ("POOR" if len(issues) >= 3 or not fine else "MIXED")
        text = "; ".join(issues if issues else fine)
        return f"{name}: {grade} - {text}"

    def __str__(self) -> str:
        wide = self.table
        header = (f"Calibration summary: {len(self.metrics)} metrics x {len(self.scenarios)} scenarios "
                  f"(means over replicates)")
        with pd.option_context("display.width", 160, "display.max_columns", 20,
                               "display.max_rows", 400, "display.float_format", "{:.3f}".format):
            body = wide.rename(columns=_STAT_LABELS).to_string()
        lines = [header, body]
        if len(self.errors):
            lines.append(f"{len(self.errors)} failed (metric, scenario) cells: see .errors")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        return self.table.rename(columns=_STAT_LABELS).to_html(float_format="{:.3f}".format)
