"""The work behind ``simpert evaluate``, ``simpert compare`` and ``simpert power``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ._common import CLIError, echo_err

__all__ = ["run_evaluate", "run_compare", "run_power"]


def _common_kwargs(*, metrics, profile, control, perturbation_key, input_type, target_key, n_boot, seed):
    if (not metrics) == (profile is None):
        raise CLIError("give exactly one of --profile and --metric")
    kw = dict(control=control, perturbation_key=perturbation_key, input_type=input_type,
              target_key=target_key, n_boot=n_boot, rng=seed)
    if profile is not None:
        kw["profile"] = profile
    else:
        from ._inputs import resolve_metric

        kw["metrics"] = [resolve_metric(m) for m in metrics]
    return kw


def _inputs(*paths):
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        if not (p.is_file() or (p.suffix == ".zarr" and p.is_dir())):
            raise CLIError(f"input {str(p)!r} does not exist (an .h5ad file or a .zarr store is expected)")


def run_evaluate(*, pred: Path, real: Path, output: Path, metrics, profile, control, perturbation_key,
                 input_type, target_key, train, n_boot, anchors, seed, force, quiet, backed: bool = False,
                 chunk_cells: int = 200_000, workers: int | None = None) -> None:
    """``simpert evaluate``: results.csv, agg_results.csv, intervals.csv, settings.json in a directory."""
    from simpert import metrics as sp_metrics

    from .._io import atomic_dir, check_output, write_table_atomic, write_text_atomic
    from ._mtx import jsonable

    check_output(output, kind="evaluation", directory=True, force=force, name="option '--output'")
    _inputs(pred, real, train)
    kw = _common_kwargs(metrics=metrics, profile=profile, control=control, perturbation_key=perturbation_key,
                        input_type=input_type, target_key=target_key, n_boot=n_boot, seed=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        res = sp_metrics.evaluate(str(pred), str(real), train=train, anchors=anchors, backed=True if backed else None,
                                  chunk_cells=chunk_cells, n_workers=workers, **kw)
    with atomic_dir(output, kind="evaluation", force=force) as tmp:
        write_table_atomic(res.results_table(), tmp / "results.csv")
        write_table_atomic(res.agg_table(), tmp / "agg_results.csv")
        write_table_atomic(res.aggregate.reset_index(), tmp / "intervals.csv")
        write_table_atomic(res.per_perturbation, tmp / "all_results.csv")
        doc = {"settings": res.settings, "dropped": res.dropped, "errors": res.errors}
        write_text_atomic(tmp / "settings.json", json.dumps(jsonable(doc), indent=1))
    for w in caught:
        echo_err(f"warning: {w.message}")
    for e in res.errors:
        echo_err(f"warning: metric {e['metric']} failed on the {e['model']}: {e['message']}")
    if not quiet:
        echo_err(str(res.summary()))
        echo_err(f"wrote results.csv, agg_results.csv, intervals.csv, all_results.csv, settings.json to {output}")


def run_compare(*, pred_a: Path, pred_b: Path, real: Path, output: Path, metrics, profile, control,
                perturbation_key, input_type, target_key, n_boot, alpha, seed, quiet) -> None:
    """``simpert compare``: one table of paired differences."""
    from simpert import metrics as sp_metrics

    from .._io import check_output, write_table_atomic

    if output.suffix.lower() not in (".csv", ".tsv", ".parquet"):
        raise CLIError(f"option '--output' must end in .csv, .tsv or .parquet; got {str(output)!r}")
    check_output(output, name="option '--output'")
    _inputs(pred_a, pred_b, real)
    kw = _common_kwargs(metrics=metrics, profile=profile, control=control, perturbation_key=perturbation_key,
                        input_type=input_type, target_key=target_key, n_boot=n_boot, seed=seed)
    res = sp_metrics.compare(pred_a, pred_b, real, alpha=alpha, **kw)
    write_table_atomic(res.table.reset_index(), output)
    if not quiet:
        echo_err(str(res.summary()))
        echo_err(f"wrote {len(res.table)} rows to {output}")


def run_power(*, metric: str, scenario: str, output: Path, predictors, cells, n_pilot, n_pilot_test, n_train,
              alpha, target, sets, seed, quiet) -> None:
    """``simpert power``: test perturbations needed per cells-per-perturbation setting."""
    from simpert import calibrate as cal

    from .._io import check_output, write_table_atomic
    from ._inputs import parse_sets, resolve_metric, resolve_scenario

    if output.suffix.lower() not in (".csv", ".tsv", ".parquet"):
        raise CLIError(f"option '--output' must end in .csv, .tsv or .parquet; got {str(output)!r}")
    check_output(output, name="option '--output'")
    name = resolve_metric(metric)
    if not isinstance(name, str):
        raise CLIError("option '--metric' must name a registered metric for power")
    sc = resolve_scenario(scenario, parse_sets(sets))
    preds = tuple(predictors) if predictors else ("technical_duplicate", "mean")
    if len(preds) != 2:
        raise CLIError(f"option '--predictor' must be given twice (the two models); got {len(preds)}")
    res = cal.power(name, sc, predictors=preds, cells_per_perturbation=list(cells) if cells else None,
                    n_pilot=n_pilot, n_pilot_test=n_pilot_test, n_train=n_train, alpha=alpha, target=target,
                    rng=seed)
    write_table_atomic(res.table, output)
    if not quiet:
        echo_err(str(res.summary()))
        echo_err(f"wrote {len(res.table)} rows to {output}")
