"""The ``simpert`` command line.

Commands::

    simpert scenarios                         list the named simulation scenarios
    simpert metrics                           list the registered metrics
    simpert simulate SCENARIO -o out.h5ad     simulate a screen (h5ad, or an mtx directory)
    simpert de IN -o table.parquet            differential expression, every perturbation vs control
    simpert score --scenario S -o scores.csv  predictors of known quality scored with metrics
    simpert calibrate --metric M --scenario S -o DIR
                                              does a metric reward what it should?
    simpert evaluate --pred P --real R -o DIR  score a model's predictions (anchors, intervals)
    simpert compare --pred-a A --pred-b B --real R -o T.csv
                                              paired comparison of two models
    simpert power --metric M --scenario S -o T.csv
                                              test perturbations needed to tell two models apart
    simpert figures [--fast]                  regenerate the paper figures (source checkout)
    simpert fit IN -o scenario.json           fit simulation parameters to a screen
    simpert serve                             run commands sent as JSON lines (persistent worker)
    simpert convert IN OUT                    .h5ad file <-> MatrixMarket directory

Bad input gives one ``error: ...`` line on stderr and exit status 2; ``SIMPERT_DEBUG=1``
shows tracebacks.
"""

from __future__ import annotations

import enum
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import typer

from ._common import CLIError, echo_err, progress, user_errors

__all__ = ["app", "main"]

app = typer.Typer(
    name="simpert",
    help="Simulated perturbation screens with known truth: simulate, run DE, score and "
         "calibrate the metrics that evaluate perturbation-response models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE = {"quiet": False}


def _version(value: bool):
    if value:
        from simpert import __version__

        typer.echo(f"simpert {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show no progress on stderr."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
):
    """Simulated perturbation screens with known truth."""
    _STATE["quiet"] = quiet


class OutFormat(str, enum.Enum):
    """Output formats of ``simulate``."""

    h5ad = "h5ad"
    mtx = "mtx"
    zarr = "zarr"


class WriteFrom(str, enum.Enum):
    """Who writes a ``.zarr`` screen's counts."""

    workers = "workers"
    client = "client"


class Backend(str, enum.Enum):
    """DE backends."""

    native = "native"
    pydeseq2 = "pydeseq2"
    r = "r"


class Shrink(str, enum.Enum):
    """Shrinkage estimators of ``de``."""

    normal = "normal"
    ash = "ash"
    apeglm = "apeglm"


class Executor(str, enum.Enum):
    """Calibration executors."""

    serial = "serial"
    joblib = "joblib"
    dask = "dask"


_SET_HELP = ("Override a simulator parameter: key=value, the value read as JSON when it parses "
             "(e.g. --set n_genes=200 --set p_effect=0.05). Repeatable.")


# --------------------------------------------------------------------------- listing


@app.command("scenarios")
@user_errors
def scenarios_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
):
    """List the named simulation scenarios (files in simulations/ and $SIMPERT_SCENARIOS)."""
    from simpert.calibrate import load_scenario
    from simpert.calibrate._scenarios import list_scenarios

    rows = []
    for name in list_scenarios():
        sc = load_scenario(name)
        rows.append({"name": sc.name, "kind": sc.kind, "description": sc.description,
                     "test_fraction": sc.test_fraction, "source": sc.source})
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    width = max([len(r["name"]) for r in rows] + [4])
    for r in rows:
        typer.echo(f"{r['name']:<{width}}  {r['kind']:<11}  {r['description']}")


@app.command("metrics")
@user_errors
def metrics_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
):
    """List the registered metrics with their orientation and source."""
    from simpert import metrics

    rows = [{"name": m.name, "higher_is_better": m.higher_is_better, "best": m.best,
             "needs": sorted(m.needs), "source": m.source, "description": m.description}
            for m in (metrics.registry[k] for k in sorted(metrics.registry))]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    width = max([len(r["name"]) for r in rows] + [4])
    for r in rows:
        arrow = {True: "higher", False: "lower", None: "-"}[r["higher_is_better"]]
        typer.echo(f"{r['name']:<{width}}  {arrow:<6}  {r['source']:<10}  {r['description']}")


# --------------------------------------------------------------------------- simulate


@app.command("simulate")
@user_errors
def simulate_cmd(
    scenario: str = typer.Argument(..., help="Scenario name (see 'simpert scenarios'), or a "
                                   "scenario file (.toml, or .json in the same layout)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output: an .h5ad file, or a "
                                "directory for --format mtx."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; the same seed gives "
                             "identical counts."),
    fmt: Optional[OutFormat] = typer.Option(None, "--format", "-f", help="h5ad (AnnData) or mtx "
                                            "(a directory: counts.mtx genes x cells, obs.csv, "
                                            "var.csv, truth CSVs, meta.json; what the R package "
                                            "reads). Default: from the output's suffix."),
    pseudobulk: bool = typer.Option(False, "--pseudobulk", help="Sum cells into one sample per "
                                    "perturbation and replicate."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
    force: bool = typer.Option(False, "--force", help="Replace an existing output directory "
                               "even if simpert did not write it."),
    chunk_cells: int = typer.Option(20000, "--chunk-cells", min=1, help="Cells per chunk for .zarr "
                                    "output (memory per worker grows with it)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Dask workers for .zarr "
                                          "output (a LocalCluster; default: every CPU)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address for .zarr "
                                            "output (e.g. tcp://host:8786) instead of a LocalCluster."),
    write_from: Optional[WriteFrom] = typer.Option(None, "--write-from", help="Who writes a .zarr output: "
                                                   "each worker its own chunks (default; the output must be on "
                                                   "a filesystem every worker sees) or this process ('client')."),
):
    """Simulate a screen with known truth and write it as .h5ad, a MatrixMarket directory or .zarr.

    A .zarr output is drawn in chunks of cells on Dask and written chunk by chunk, so the
    screen need not fit in memory; its counts are the bytes of the .h5ad output for the
    same seed.
    """
    from ._inputs import parse_sets, resolve_scenario, simulate_scenario

    fmt = _screen_format(output, fmt)
    _check_screen_output(output, fmt, force=force)
    sc = resolve_scenario(scenario, parse_sets(sets))
    if fmt is OutFormat.zarr:
        _simulate_zarr(sc, output, seed=seed, pseudobulk=pseudobulk, chunk_cells=chunk_cells, workers=workers,
                       scheduler=scheduler, force=force, write_from=(write_from or WriteFrom.workers).value)
        return
    if workers is not None or scheduler is not None or write_from is not None:
        raise CLIError("options '--workers', '--scheduler' and '--write-from' apply to .zarr output only")
    with progress(f"simulating {sc.name} (seed {seed})", quiet=_STATE["quiet"]):
        adata = simulate_scenario(sc, seed=seed)
        if pseudobulk:
            from simpert import sim

            adata = sim.pseudobulk(adata, by=("perturbation", "replicate"))
        _write_screen(adata, output, fmt, force=force)
    if not _STATE["quiet"]:
        echo_err(f"wrote {adata.n_obs} x {adata.n_vars} screen to {output}")


def _simulate_zarr(sc, output: Path, *, seed, pseudobulk, chunk_cells, workers, scheduler, force,
                   write_from="workers") -> None:
    import numpy as np

    from simpert import sim

    if pseudobulk:
        raise CLIError("option '--pseudobulk' does not apply to .zarr output (a Zarr store holds cells; "
                       "use 'simpert pseudobulk' on it)")
    if sc.kind != "screen":
        raise CLIError(f"a .zarr output needs a count screen scenario (kind 'screen'); got {sc.kind!r}")
    params = sc.params if isinstance(sc.params, sim.ScreenParams) else sim.ScreenParams(**sc.params_dict())
    with progress(f"simulating {sc.name} (seed {seed}) to {output} in chunks of {chunk_cells} cells",
                  quiet=_STATE["quiet"]):
        sim.screen(params, rng=np.random.SeedSequence(int(seed)), out=output, chunk_cells=chunk_cells,
                   client=scheduler, n_workers=workers, force=force, write_from=write_from)
    if not _STATE["quiet"]:
        echo_err(f"wrote the screen to {output}")


def _screen_format(output: Path, fmt: Optional[OutFormat]) -> OutFormat:
    """The output format: given, or from the suffix (.h5ad, .zarr; no suffix: an mtx directory)."""
    suffix = output.suffix.lower()
    if fmt is None:
        if suffix == ".h5ad":
            return OutFormat.h5ad
        if suffix == ".zarr":
            return OutFormat.zarr
        if suffix == "":
            return OutFormat.mtx
        raise CLIError(f"option '--output' must end in .h5ad (an AnnData file), .zarr (a Zarr store, "
                       f"drawn in chunks) or have no suffix (a MatrixMarket directory); got {str(output)!r} "
                       "(or give --format)")
    if fmt is OutFormat.zarr and suffix != ".zarr":
        raise CLIError(f"option '--output' must end in .zarr for --format zarr; got {str(output)!r}")
    if fmt is OutFormat.h5ad and suffix != ".h5ad":
        raise CLIError(f"option '--output' must end in .h5ad for --format h5ad; got {str(output)!r}")
    return fmt


def _check_screen_output(output: Path, fmt: OutFormat, *, force: bool) -> None:
    """Refuse, before any work, an output that cannot be written or would lose files."""
    from .._io import check_output
    from ._mtx import _is_written_by_simpert

    if fmt is OutFormat.h5ad:
        check_output(output, name="option '--output'")
    elif fmt is OutFormat.zarr:
        from simpert.sim._chunked import _is_zarr_screen

        check_output(output, kind="screen-zarr", directory=True, force=force or _is_zarr_screen(output),
                     name="option '--output'")
    else:
        force = force or (output.is_dir() and _is_written_by_simpert(output))
        check_output(output, kind="mtx", directory=True, force=force, name="option '--output'")


def _write_screen(adata, output: Path, fmt: OutFormat, *, force: bool = False) -> None:
    from .._io import write_h5ad_atomic
    from ._mtx import write_mtx_dir

    if fmt is OutFormat.h5ad:
        write_h5ad_atomic(adata, output)
    else:
        write_mtx_dir(adata, output, force=force)


# --------------------------------------------------------------------------- pseudobulk


@app.command("pseudobulk")
@user_errors
def pseudobulk_cmd(
    input: Path = typer.Argument(..., help="Cells: a .zarr store or .h5ad file (read in chunks)."),
    output: Path = typer.Option(..., "--output", "-o", help="Samples (.h5ad)."),
    by: Optional[List[str]] = typer.Option(None, "--by", help="obs columns defining the samples "
                                           "(repeatable; default perturbation and replicate)."),
    chunk_cells: int = typer.Option(50000, "--chunk-cells", min=1, help="Cells read per task."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=1, help="Dask workers (a "
                                          "LocalCluster; 1: read in this process)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address."),
):
    """Sum cells into samples (perturbation x replicate) without loading the screen."""
    from simpert import sim

    from .._io import check_output, write_h5ad_atomic

    if output.suffix.lower() != ".h5ad":
        raise CLIError(f"option '--output' must end in .h5ad; got {str(output)!r}")
    check_output(output, name="option '--output'")
    if not input.exists():
        raise CLIError(f"input {str(input)!r} does not exist")
    client = scheduler if scheduler is not None else ("serial" if workers == 1 else None)
    with progress(f"pseudobulk of {input}", quiet=_STATE["quiet"]):
        pb = sim.pseudobulk_zarr(input, by=tuple(by) if by else ("perturbation", "replicate"),
                                 chunk_cells=chunk_cells, client=client, n_workers=workers)
        write_h5ad_atomic(pb, output)
    if not _STATE["quiet"]:
        echo_err(f"wrote {pb.n_obs} samples x {pb.n_vars} genes to {output}")


# --------------------------------------------------------------------------- de


@app.command("de")
@user_errors
def de_cmd(
    input: Path = typer.Argument(..., help="A screen: .h5ad file or MatrixMarket directory "
                                 "(cells are summed into pseudobulk samples first)."),
    output: Path = typer.Option(..., "--output", "-o", help="Result table: .parquet, .csv or .tsv."),
    backend: Backend = typer.Option(Backend.native, "--backend", "-b", help="native (vectorised "
                                    "DESeq2 engine), pydeseq2, or r (R DESeq2 through rpy2)."),
    control: Optional[str] = typer.Option(None, "--control", help="Control label; default the "
                                          "screen's own (uns['simpert']['control']) or 'control'."),
    shrink: Optional[Shrink] = typer.Option(None, "--shrink", help="Add shrunken fold changes "
                                            "(log2fc_shrunk, lfc_se_shrunk): normal (DESeq2's "
                                            "lfcShrink type 'normal'; native and r backends), ash "
                                            "(adaptive shrinkage, any backend) or apeglm "
                                            "(pydeseq2 backend)."),
    design: str = typer.Option("perturbation", "--design", help="The perturbation column, or a "
                               "formula whose last term is the perturbation factor and whose other "
                               "terms are covariates, e.g. '~ replicate + perturbation'."),
):
    """Differential expression of every perturbation against control, from one fit."""
    from simpert import de

    from ._inputs import read_screen
    from .._io import write_table_atomic

    _check_table_suffix(output)
    adata = read_screen(input)
    if control is None:
        control = str(adata.uns.get("simpert", {}).get("control", "control"))
    with progress(f"DE ({backend.value} backend) on {adata.n_obs} x {adata.n_vars}",
                  quiet=_STATE["quiet"]):
        res = de.deseq(adata, control=control, backend=backend.value, design=design,
                       shrink=None if shrink is None else shrink.value)
        write_table_atomic(res.table, output)
    if not _STATE["quiet"]:
        echo_err(f"wrote {len(res.table)} rows to {output}")


def _check_table_suffix(output: Path) -> None:
    """Refuse, before any work, a table output with an unknown suffix or an unwritable path."""
    from .._io import check_output

    if output.suffix.lower() not in (".parquet", ".csv", ".tsv"):
        raise CLIError(f"option '--output' must end in .parquet, .csv or .tsv; got {str(output)!r}")
    check_output(output, name="option '--output'")


# --------------------------------------------------------------------------- score


_DEFAULT_PREDICTORS = ["oracle", "technical_duplicate", "mean", "control"]


@app.command("score")
@user_errors
def score_cmd(
    output: Path = typer.Option(..., "--output", "-o", help="Score table (.csv, .parquet or .tsv): "
                                "predictor, perturbation, metric, value."),
    scenario: Optional[str] = typer.Option(None, "--scenario", "-s", help="Simulate this scenario "
                                           "(name or file) and score on it."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="Score on this screen "
                                         "(.h5ad or MatrixMarket directory) instead."),
    predictors: Optional[List[str]] = typer.Option(None, "--predictor", "-p", help="Predictor "
                                                   "(repeatable): oracle, technical_duplicate, "
                                                   "ladder(0.5), mean, median, control, ... "
                                                   "Default: oracle, technical_duplicate, mean, "
                                                   "control."),
    metrics: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="Metric (repeatable): "
                                                "a registered name, module:function or "
                                                "file.R:function. Default: pearson_delta, mse."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the simulation, split and predictors."),
    test_fraction: Optional[float] = typer.Option(None, "--test-fraction", min=0.0, max=1.0,
                                                  help="Held-out fraction; default the scenario's (0.5)."),
    lower_is_better: bool = typer.Option(False, "--lower-is-better", help="Orientation of user "
                                         "metrics (module:function, file.R:function)."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
):
    """Score predictors of known quality on a simulated screen with the chosen metrics."""
    import numpy as np

    from simpert import metrics as sp_metrics
    from simpert import predict

    from ._inputs import parse_sets, read_screen, resolve_metric, resolve_scenario, simulate_scenario
    from .._io import write_table_atomic

    _check_table_suffix(output)
    if (scenario is None) == (input is None):
        raise CLIError("give exactly one of --scenario and --input")
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise CLIError(f"option '--test-fraction' must be in (0, 1); got {test_fraction}")
    resolved = [resolve_metric(m, higher_is_better=not lower_is_better)
                for m in (metrics or ["pearson_delta", "mse"])]
    preds_names = list(predictors or _DEFAULT_PREDICTORS)
    ss = np.random.SeedSequence(int(seed))
    sim_ss, split_ss, make_ss = ss.spawn(3)
    with progress("scoring", quiet=_STATE["quiet"]):
        if scenario is not None:
            sc = resolve_scenario(scenario, parse_sets(sets))
            adata = simulate_scenario(sc, seed=seed)
            tf = sc.test_fraction if test_fraction is None else test_fraction
        else:
            if sets:
                raise CLIError("option '--set' applies to --scenario only")
            adata = read_screen(input)
            tf = 0.5 if test_fraction is None else test_fraction
        split = predict.split(adata, test_fraction=tf, rng=split_ss)
        preds = predict.make(adata, split, preds_names, rng=make_ss)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            table = sp_metrics.score(preds, adata, split, metrics=resolved)
        write_table_atomic(table, output)
    for f in table.attrs.get("errors") or []:
        echo_err(f"warning: metric {f['metric']} failed on {f['predictor']} and is left out: {f['message']}")
    if not _STATE["quiet"]:
        echo_err(f"wrote {len(table)} scores to {output}")


# --------------------------------------------------------------------------- calibrate


@app.command("calibrate")
@user_errors
def calibrate_cmd(
    metric: List[str] = typer.Option(..., "--metric", "-m", help="Metric to calibrate "
                                     "(repeatable): a registered name (see 'simpert metrics'), "
                                     "module:function or file.py:function (a Python function "
                                     "fn(inp) -> one value per perturbation), or "
                                     "file.R:function (an R function)."),
    scenario: List[str] = typer.Option(..., "--scenario", "-s", help="Scenario name or file "
                                       "(repeatable; 'all' for every named scenario)."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for table.csv, "
                                "summary.csv, summary.json, errors.csv and one card_<metric>.png "
                                "per metric."),
    replicates: int = typer.Option(10, "--replicates", "-r", min=1, help="Simulated replicates "
                                   "per scenario."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the whole run (same seed, same "
                             "results, whatever the executor)."),
    executor: Executor = typer.Option(Executor.joblib, "--executor", "-e", help="serial, joblib "
                                      "(processes on this machine) or dask."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Workers (default: every "
                                       "CPU available)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address "
                                            "(default: start a LocalCluster)."),
    predictors: Optional[List[str]] = typer.Option(None, "--predictor", "-p", help="Predictors "
                                                   "(repeatable); default the standard panel."),
    lower_is_better: bool = typer.Option(False, "--lower-is-better", help="Orientation of user "
                                         "metrics (default: higher is better)."),
    best: Optional[float] = typer.Option(None, "--best", help="Best attainable value of user "
                                         "metrics (needed for the dynamic range fraction)."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP + " Applies to every "
                                             "scenario."),
    card: bool = typer.Option(True, "--card/--no-card", help="Draw a calibration card PNG per metric."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output directory "
                               "even if it is not an earlier calibration output."),
):
    """Does a metric reward what it should? Scores predictors of known quality on simulated scenarios.

    Writes the tidy scores and the calibration statistics (dynamic range fraction, ladder
    tau, AUROC of duplicate vs mean baseline, null level, target and systematic gain,
    specificity) with a calibration card per metric.
    """
    from ._calibrate import run_calibrate

    run_calibrate(metrics=metric, scenarios=scenario, output=output, replicates=replicates,
                  seed=seed, executor=executor.value, jobs=jobs, scheduler=scheduler,
                  predictors=predictors, higher_is_better=not lower_is_better, best=best,
                  sets=sets, card=card, quiet=_STATE["quiet"], force=force)


# --------------------------------------------------------------------------- evaluate, compare, power


class InputType(str, enum.Enum):
    """Input types of ``evaluate``."""

    counts = "counts"
    lognorm = "lognorm"


_PROFILE_HELP = ("A named set of metrics with its source's conventions: cell-eval-full, vcc, vcc2026, "
                 "pereggrn, systema or all.")


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    pred: Path = typer.Option(..., "--pred", help="Predicted cells or profiles (.h5ad, or a .zarr store "
                              "read by blocks of rows)."),
    real: Path = typer.Option(..., "--real", help="Observed cells (.h5ad, or a .zarr store read by blocks "
                              "of rows)."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for results.csv (perturbation, "
                                "metric, value), agg_results.csv (cell-eval2's layout), intervals.csv "
                                "(value, interval, anchors, score per metric), all_results.csv and "
                                "settings.json."),
    profile: Optional[str] = typer.Option(None, "--profile", help=_PROFILE_HELP),
    metrics: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="Metric (repeatable): a "
                                                "registered name or module:function."),
    control: str = typer.Option("control", "--control", help="Label of the control cells, e.g. "
                                "non-targeting."),
    perturbation_key: str = typer.Option("perturbation", "--perturbation-key", "--pert-col",
                                         help="Column of obs with the perturbation labels."),
    input_type: Optional[InputType] = typer.Option(None, "--input-type", help="counts or lognorm "
                                                   "(default: detected)."),
    target_key: Optional[str] = typer.Option(None, "--target-key", help="Column of obs with each "
                                             "perturbation's target gene (default: the gene named like "
                                             "the label)."),
    train: Optional[Path] = typer.Option(None, "--train", help="Observed cells of the training "
                                         "perturbations (for Systema's centroid and training weights)."),
    n_boot: int = typer.Option(1000, "--n-boot", min=0, help="Bootstrap resamples for the intervals."),
    anchors: bool = typer.Option(True, "--anchors/--no-anchors", help="Score the mean-response baseline "
                                 "and the split-half replicate, and the score (u - b)/(r - b)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the anchors and the bootstrap."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output directory even if "
                               "it is not an earlier evaluation."),
    backed: bool = typer.Option(False, "--backed", help="Read .h5ad inputs by blocks of rows too (.zarr "
                                "stores always are): screens larger than memory."),
    chunk_cells: int = typer.Option(200_000, "--chunk-cells", min=1, help="Rows read at a time from stored "
                                    "inputs."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Read stored inputs on a local Dask "
                                          "cluster of this many processes (default: in this process)."),
):
    """Score a model's predictions against an observed screen, with anchors and intervals."""
    from ._evaluate import run_evaluate

    run_evaluate(pred=pred, real=real, output=output, metrics=metrics, profile=profile, control=control,
                 perturbation_key=perturbation_key, input_type=None if input_type is None else input_type.value,
                 target_key=target_key, train=train, n_boot=n_boot, anchors=anchors, seed=seed, force=force,
                 quiet=_STATE["quiet"], backed=backed, chunk_cells=chunk_cells, workers=workers)


@app.command("compare")
@user_errors
def compare_cmd(
    pred_a: Path = typer.Option(..., "--pred-a", help="First model's predictions (.h5ad)."),
    pred_b: Path = typer.Option(..., "--pred-b", help="Second model's predictions (.h5ad)."),
    real: Path = typer.Option(..., "--real", help="Observed cells (.h5ad)."),
    output: Path = typer.Option(..., "--output", "-o", help="Table (.csv, .tsv or .parquet): per metric "
                                "a, b, difference, interval, t, p_value, n, better."),
    profile: Optional[str] = typer.Option(None, "--profile", help=_PROFILE_HELP),
    metrics: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="Metric (repeatable)."),
    control: str = typer.Option("control", "--control", help="Label of the control cells."),
    perturbation_key: str = typer.Option("perturbation", "--perturbation-key", "--pert-col",
                                         help="Column of obs with the perturbation labels."),
    input_type: Optional[InputType] = typer.Option(None, "--input-type", help="counts or lognorm."),
    target_key: Optional[str] = typer.Option(None, "--target-key", help="Column of obs with the targets."),
    n_boot: int = typer.Option(1000, "--n-boot", min=0, help="Bootstrap resamples for the interval."),
    alpha: float = typer.Option(0.05, "--alpha", min=0.0, max=1.0, help="Level at which a winner is called."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the bootstrap."),
):
    """Paired comparison of two models per metric: difference, interval and p-value."""
    from ._evaluate import run_compare

    run_compare(pred_a=pred_a, pred_b=pred_b, real=real, output=output, metrics=metrics, profile=profile,
                control=control, perturbation_key=perturbation_key,
                input_type=None if input_type is None else input_type.value, target_key=target_key,
                n_boot=n_boot, alpha=alpha, seed=seed, quiet=_STATE["quiet"])


@app.command("power")
@user_errors
def power_cmd(
    metric: str = typer.Option(..., "--metric", "-m", help="A registered metric."),
    scenario: str = typer.Option(..., "--scenario", "-s", help="Scenario name or file (e.g. one fitted "
                                 "to your data)."),
    output: Path = typer.Option(..., "--output", "-o", help="Table (.csv, .tsv or .parquet)."),
    predictors: Optional[List[str]] = typer.Option(None, "--predictor", "-p", help="The two models "
                                                   "(give twice); default technical_duplicate and mean."),
    cells: Optional[List[float]] = typer.Option(None, "--cells", help="Cells per perturbation "
                                                "(repeatable); default the scenario's."),
    n_pilot: int = typer.Option(5, "--n-pilot", min=1, help="Pilot screens per setting."),
    n_pilot_test: int = typer.Option(60, "--n-pilot-test", min=3, help="Test perturbations per pilot."),
    n_train: int = typer.Option(40, "--n-train", min=1, help="Training perturbations per screen."),
    alpha: float = typer.Option(0.05, "--alpha", min=0.0, max=1.0, help="Test level."),
    target: float = typer.Option(0.8, "--power", min=0.0, max=1.0, help="Power to reach."),
    sets: Optional[List[str]] = typer.Option(None, "--set", help=_SET_HELP),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the pilots."),
):
    """Test perturbations needed to tell two models apart with a metric (80% power by default)."""
    from ._evaluate import run_power

    run_power(metric=metric, scenario=scenario, output=output, predictors=predictors, cells=cells,
              n_pilot=n_pilot, n_pilot_test=n_pilot_test, n_train=n_train, alpha=alpha, target=target,
              sets=sets, seed=seed, quiet=_STATE["quiet"])


# --------------------------------------------------------------------------- figures


def _source_root() -> Path:
    return Path(__file__).resolve().parents[2]


@app.command("figures")
@user_errors
def figures_cmd(
    fast: bool = typer.Option(False, "--fast", help="The small run CI uses (a few minutes)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Parallel workers."),
):
    """Regenerate the paper figures (needs a source checkout with paper_figures/)."""
    root = _source_root()
    if not (root / "paper_figures" / "__init__.py").is_file():
        raise CLIError(f"paper_figures/ not found next to the package ({root}); "
                       "'simpert figures' runs from a source checkout")
    cmd = [sys.executable, "-m", "paper_figures"]
    if fast:
        cmd.append("--fast")
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    rc = subprocess.call(cmd, cwd=root, env=env)
    if rc != 0:
        echo_err(f"error: python -m paper_figures exited with status {rc}")
        raise typer.Exit(rc)


from . import _fit, _mtx, _serve  # noqa: E402  (commands defined in their own modules)

_fit.register(app, _STATE)
_mtx.register(app)
_serve.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``simpert`` executable.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).
    """
    from .._io import install_signal_cleanup

    install_signal_cleanup()
    app(args=argv, prog_name="simpert")


if __name__ == "__main__":  # pragma: no cover
    main()
