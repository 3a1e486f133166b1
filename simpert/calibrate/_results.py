"""Results of a calibration run and their summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import write_table_atomic, write_text_atomic
from .._validation import OneOf, check
from ._stats import STATISTICS, replicate_statistics, undefined_reason

__all__ = ["MetricInfo", "CalibrationResult", "CalibrationSummary", "TABLE_COLUMNS", "ERROR_COLUMNS",
           "NOTE_COLUMNS", "VERDICT_RULES"]

#: Columns of :attr:`CalibrationResult.table`.
TABLE_COLUMNS = ("scenario", "replicate", "predictor", "perturbation", "metric", "value")
#: Columns of :attr:`CalibrationResult.errors`.
ERROR_COLUMNS = ("metric", "scenario", "n_failed", "message")
#: Columns of :attr:`CalibrationSummary.notes`.
NOTE_COLUMNS = ("metric", "scenario", "statistic", "reason")

#: The checks of :meth:`CalibrationSummary.verdict`: (statistic, label, where it is read,
#: threshold, direction). "signal": median over the scenarios other than noise_only.
VERDICT_RULES = (
    ("tau", "ladder tau", "signal", 0.8, ">="),
    ("auroc", "AUROC", "signal", 0.8, ">="),
    ("drf_mean", "DRF vs mean", "signal", 0.2, ">"),
    ("null_level", "noise-only null level", "noise_only", 0.5, "<"),
)

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
        rows, notes = [], {}
        if len(self.table):
            for (metric, scenario, rep), grp in self.table.groupby(
                ["metric", "scenario", "replicate"], sort=False, observed=True
            ):
                info = self.metrics.get(metric, MetricInfo(metric))
                wide = grp.pivot_table(index="predictor", columns="perturbation", values="value",
                                       aggfunc="first", dropna=False)
                stats = replicate_statistics(wide, higher_is_better=info.higher_is_better, best=info.best)
                rows.append({"metric": metric, "scenario": scenario, "replicate": rep, **stats})
                for name, v in stats.items():
                    if not np.isfinite(v) and (metric, scenario, name) not in notes:
                        notes[(metric, scenario, name)] = undefined_reason(wide, name, best=info.best)
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
        # a note for every statistic undefined in all replicates: the first replicate's reason
        undefined = agg[agg["n"] == 0]
        note_rows = [(m, sc, st, notes.get((m, sc, st), "undefined in every replicate"))
                     for m, sc, st in undefined[["metric", "scenario", "statistic"]].itertuples(index=False)]
        note_frame = pd.DataFrame(note_rows, columns=list(NOTE_COLUMNS))
        return CalibrationSummary(agg, per_rep, metric_order, scen_order,
                                  {m: self.metrics[m] for m in metric_order}, self.errors.copy(),
                                  notes=note_frame)

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
    notes : DataFrame
        Why a statistic is undefined (NaN in every replicate) for a (metric, scenario):
        ``metric``, ``scenario``, ``statistic``, ``reason`` (for instance "the score of the
        mean baseline is NaN on every perturbation", as for a correlation of a centred
        constant prediction). Printed under the table and quoted by :meth:`verdict`.
        NaN is the value, by design: the statistic does not exist there.
    """

    def __init__(self, long, per_replicate, metrics, scenarios, info, errors, *, notes=None):
        self.long = long
        self.per_replicate = per_replicate
        self.metrics = list(metrics)
        self.scenarios = list(scenarios)
        self.info = dict(info)
        self.errors = errors
        if notes is None:
            n = long["n"] if "n" in long else pd.Series(dtype=float)
            und = long[n == 0] if len(long) else long
            notes = pd.DataFrame([(m, sc, st, "undefined in every replicate") for m, sc, st in
                                  und[["metric", "scenario", "statistic"]].itertuples(index=False)]
                                 if len(und) else [], columns=list(NOTE_COLUMNS))
        self.notes = notes

    def why(self, metric: str, statistic: str, scenario: str | None = None) -> str | None:
        """Why a statistic is undefined for a metric (None when it is defined).

        Parameters
        ----------
        metric : str
            Metric label.
        statistic : str
            One of :data:`simpert.calibrate.STATISTICS`.
        scenario : str, optional
            One scenario; default: every scenario where it is undefined, as
            ``"scenario: reason"`` joined by "; " (scenarios sharing a reason are grouped).

        Returns
        -------
        str or None
        """
        check("metric", metric, OneOf(tuple(self.metrics)))
        check("statistic", statistic, OneOf(STATISTICS))
        sub = self.notes[(self.notes["metric"] == metric) & (self.notes["statistic"] == statistic)]
        if scenario is not None:
            check("scenario", scenario, OneOf(tuple(self.scenarios)))
            sub = sub[sub["scenario"] == scenario]
        if sub.empty:
            return None
        if scenario is not None:
            return str(sub["reason"].iloc[0])
        grouped = sub.groupby("reason", sort=False)["scenario"].apply(lambda x: ", ".join(x))
        return "; ".join(f"{sc}: {r}" for r, sc in grouped.items())

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
            ``"<metric>: <GOOD|MIXED|POOR> - <reasons>"``.

        Notes
        -----
        The checks (:data:`VERDICT_RULES`), each on the median over scenarios of the
        per-scenario means; "signal" scenarios are all but ``noise_only`` (all of them when
        the run has no other):

        1. ladder tau >= 0.8 on signal scenarios (the score improves toward the truth);
        2. AUROC of technical duplicate vs mean baseline >= 0.8 on signal scenarios;
        3. DRF vs the mean baseline > 0.2 on signal scenarios;
        4. null level < 0.5 on ``noise_only`` (the mean baseline earns less than half the
           way from an independent replicate's score to the best value when there is
           nothing to predict; the statistic is the same for errors and similarities, see
           ``simpert.calibrate._stats.null_level``);
        5. the target gene alone earns less than half the specificity (oracle vs
           shuffled) on signal scenarios.

        A check whose statistic is undefined (NaN: no noise_only scenario, a missing
        predictor, a score that is NaN everywhere, see :attr:`notes`) is not judged and is
        listed as "not judged" with the reason. Grade: GOOD when every judged check passes
        and at least three are judged; POOR when three or more fail or none passes; MIXED
        otherwise. The line lists the failed checks (the passed ones when none failed),
        then the checks not judged.
        """
        check("metric", name, OneOf(tuple(self.metrics)))
        t = self.metric(name)
        noise = [s for s in t.index if s == "noise_only"]
        signal = [s for s in t.index if s != "noise_only"] or list(t.index)

        def med(col, rows):
            if not rows:
                return float("nan")
            v = t.loc[rows, col].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            return float(np.median(v)) if v.size else float("nan")

        def reason(col, rows):
            if not rows:
                return "no noise_only scenario in the run"
            sub = self.notes[(self.notes["metric"] == name) & (self.notes["statistic"] == col)
                             & self.notes["scenario"].isin(rows)]
            return str(sub["reason"].iloc[0]) if len(sub) else "undefined"

        ops = {">=": np.greater_equal, ">": np.greater, "<": np.less}
        issues, fine, skipped = [], [], []
        for col, label, where, thr, op in VERDICT_RULES:
            rows = noise if where == "noise_only" else signal
            val = med(col, rows)
            if np.isfinite(val):
                (fine if ops[op](val, thr) else issues).append(f"{label} {val:.2f}")
            else:
                skipped.append((label, reason(col, rows)))
        tgain, spec = med("target_gain", signal), med("specificity", signal)
        if np.isfinite(tgain) and np.isfinite(spec):
            if tgain > 0 and (spec <= 0 or tgain >= 0.5 * spec):
                issues.append(f"target gene alone earns {tgain:.2g} (oracle vs shuffled {spec:.2g})")
            else:
                fine.append("target gene alone earns little")
        else:
            col = "target_gain" if not np.isfinite(tgain) else "specificity"
            skipped.append(("target-gene check", reason(col, signal)))
        if not issues and len(fine) >= 3:
            grade = "GOOD"
        elif len(issues) >= 3 or not fine:
            grade = "POOR"
        else:
            grade = "MIXED"
        text = "; ".join(issues if issues else fine)
        if skipped:
            by_reason: dict[str, list[str]] = {}
            for label, why in skipped:
                by_reason.setdefault(why, []).append(label)
            text += ("; " if text else "") + "not judged: " + "; ".join(
                f"{', '.join(labels)} ({why})" for why, labels in by_reason.items())
        return f"{name}: {grade} - {text}"

    def __str__(self) -> str:
        wide = self.table
        header = (f"Calibration summary: {len(self.metrics)} metrics x {len(self.scenarios)} scenarios "
                  f"(means over replicates)")
        with pd.option_context("display.width", 160, "display.max_columns", 20,
                               "display.max_rows", 400, "display.float_format", "{:.3f}".format):
            body = wide.rename(columns=_STAT_LABELS).to_string()
        lines = [header, body]
        if len(self.notes):
            lines.append("Undefined (NaN) statistics:")
            order = {m: i for i, m in enumerate(self.metrics)}
            notes = self.notes.assign(_o=self.notes["metric"].map(order)).sort_values("_o", kind="stable")
            for (m, r), g in notes.groupby(["metric", "reason"], sort=False):
                cells = sorted({f"{st}" for st in g["statistic"]}, key=list(STATISTICS).index)
                scen = ", ".join(dict.fromkeys(g["scenario"]))
                lines.append(f"  {m}: {', '.join(_STAT_LABELS[c] for c in cells)} [{scen}]: {r}")
        if len(self.errors):
            lines.append(f"{len(self.errors)} failed (metric, scenario) cells: see .errors")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        return self.table.rename(columns=_STAT_LABELS).to_html(float_format="{:.3f}".format)
