"""The work behind ``simpert calibrate``: resolve inputs, run, write the outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ._common import CLIError, echo_err, progress

__all__ = ["run_calibrate", "merge_results", "write_outputs"]


def merge_results(parts: list):
    """Concatenate per-scenario :class:`~simpert.calibrate.CalibrationResult` objects.

    The calibration harness seeds replicate ``r`` of every scenario with the same child of
    the run's seed, so running scenarios one at a time with the same seed and merging gives
    the same table as one run over all of them.

    Parameters
    ----------
    parts : list of CalibrationResult
        Results of the same metrics, predictors, replicates and seed.

    Returns
    -------
    CalibrationResult
    """
    from simpert.calibrate import CalibrationResult

    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    scenarios = {}
    for p in parts:
        scenarios.update(p.scenarios)
    return CalibrationResult(
        table=pd.concat([p.table for p in parts], ignore_index=True),
        errors=pd.concat([p.errors for p in parts], ignore_index=True),
        metrics=first.metrics,
        scenarios=scenarios,
        predictors=first.predictors,
        n_replicates=first.n_replicates,
        seed=first.seed,
        executor=first.executor,
        wall_time=float(sum(p.wall_time for p in parts)),
    )


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "metric"


def write_outputs(result, output: Path, *, card: bool = True, command: dict | None = None,
                  force: bool = False) -> list[Path]:
    """Write a calibration result into the directory ``output``, replacing it as a whole.

    Files: ``table.csv`` (tidy scores), ``errors.csv`` (metrics that raised),
    ``summary.csv`` (metric, scenario, statistic, mean, se, n, B), ``summary.json`` (the same
    plus one verdict line per metric and the run's seed), and ``card_<metric>.png`` per
    metric when ``card`` is true.

    Parameters
    ----------
    result : CalibrationResult
    output : Path
        Directory, created when absent. An existing one is replaced as a whole (so it holds
        this run's files only) when it is empty or an earlier calibration output; otherwise
        FileExistsError unless ``force``.
    card : bool, default True
        Draw the calibration cards.
    command : dict, optional
        The command-line arguments, recorded in ``summary.json``.
    force : bool, default False
        Replace an existing directory whatever it holds.

    Returns
    -------
    list of Path
        The files written.
    """
    from .._io import atomic_dir

    with atomic_dir(output, kind="calibration", force=force) as tmp:
        names = _write_files(result, tmp, card=card, command=command)
    return [output / n for n in names]


def _write_files(result, output: Path, *, card: bool, command: dict | None) -> list[str]:
    from .._io import atomic_path, write_table_atomic, write_text_atomic
    from ._mtx import jsonable

    summary = result.summary()
    written = [write_table_atomic(result.table, output / "table.csv"),
               write_table_atomic(result.errors, output / "errors.csv"),
               write_table_atomic(summary.long, output / "summary.csv")]
    verdicts = {}
    for m in summary.metrics:
        try:
            verdicts[m] = summary.verdict(m)
        except Exception as err:  # noqa: BLE001 - a verdict is a convenience
            verdicts[m] = f"{m}: no verdict ({err})"
    doc = {
        "metrics": summary.metrics,
        "scenarios": summary.scenarios,
        "predictors": list(result.predictors),
        "n_replicates": result.n_replicates,
        "seed": result.seed,
        "executor": result.executor,
        "wall_time_s": result.wall_time,
        "verdicts": verdicts,
        "summary": summary.long.to_dict(orient="records"),
        "errors": result.errors.to_dict(orient="records"),
        "command": command or {},
    }
    written.append(write_text_atomic(output / "summary.json", json.dumps(jsonable(doc), indent=1)))
    if card:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from simpert import pl

        for m in summary.metrics:
            if m not in set(result.table["metric"]):
                continue
            fig = pl.calibration_card(result, metric=m)
            fig = getattr(fig, "figure", fig)
            path = output / f"card_{_safe(m)}.png"
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=110, format="png")
            plt.close(fig)
            written.append(path.name)
    return [Path(p).name for p in written]


def run_calibrate(*, metrics, scenarios, output: Path, replicates: int, seed: int, executor: str,
                  jobs, scheduler, predictors, higher_is_better: bool, best, sets, card: bool,
                  quiet: bool, force: bool = False) -> None:
    """Run ``simpert calibrate`` (see ``simpert calibrate --help``)."""
    from simpert import calibrate as cal

    from ._inputs import parse_sets, resolve_metric, resolve_scenario

    from .._io import check_output

    check_output(output, kind="calibration", directory=True, force=force, name="option '--output'")
    if scheduler is not None and executor != "dask":
        raise CLIError("option '--scheduler' needs --executor dask")
    overrides = parse_sets(sets)
    names = []
    for s in scenarios:
        names.extend(cal.list_scenarios() if s == "all" else [s])
    scens = [resolve_scenario(s, overrides) for s in names]
    dup = sorted({s.name for s in scens if [t.name for t in scens].count(s.name) > 1})
    if dup:
        raise CLIError(f"scenarios must have distinct names; got {', '.join(dup)} more than once")
    resolved = [resolve_metric(m, higher_is_better=higher_is_better, best=best) for m in metrics]
    kwargs = dict(predictors=list(predictors) if predictors else None, n_replicates=replicates,
                  rng=int(seed), executor=executor, n_jobs=jobs)
    parts = []
    with progress(f"calibrating {len(resolved)} metric(s) on {len(scens)} scenario(s) x "
                  f"{replicates} replicate(s)", total=len(scens), quiet=quiet) as bar:
        if executor == "dask":
            kwargs["client"] = scheduler
            parts.append(cal.calibrate(resolved, scens, **kwargs))
            bar.update(len(scens))
        else:
            for sc in scens:
                parts.append(cal.calibrate(resolved, [sc], **kwargs))
                bar.advance()
    result = merge_results(parts)
    if len(result.table) == 0:
        msg = "; ".join(f"{r.metric} on {r.scenario}: {r.message}" for r in result.errors.itertuples())
        raise CLIError(f"every metric failed on every scenario: {msg[:2000]}")
    command = {"metrics": list(metrics), "scenarios": list(scenarios), "replicates": replicates,
               "seed": seed, "executor": executor, "jobs": jobs, "set": overrides}
    files = write_outputs(result, output, card=card, command=command, force=force)
    if not quiet:
        echo_err(str(result.summary()))
        for _, row in result.errors.iterrows():
            echo_err(f"warning: metric {row['metric']} failed on {row['scenario']} "
                     f"({row['n_failed']} replicate(s)): {row['message']}")
        echo_err("wrote " + ", ".join(p.name for p in files) + f" to {output}")
