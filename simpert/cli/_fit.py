"""Simulation parameters: ``simpert fit`` fits them to a user's screen, ``simpert params``
shows a scenario's (every field, defaults included).

The output of ``fit`` is a scenario file (JSON, in the layout of the TOML scenario files) that
``simpert simulate`` and ``simpert calibrate`` accept, so a user can simulate screens
shaped like their own data; ``--report`` adds the fit's diagnostics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

__all__ = ["fit_to_scenario", "fit_report", "scenario_params", "register"]


def fit_to_scenario(fit, *, name: str = "fitted", source: str = "") -> dict:
    """The scenario dict (``{"scenario": ..., "params": ...}``) of a screen fit.

    Parameters
    ----------
    fit : simpert.sim.ScreenFit
        The result of :func:`simpert.sim.fit_screen`.
    name : str, default "fitted"
        Scenario name.
    source : str, default ""
        Where the data came from (goes into the description).

    Returns
    -------
    dict
        JSON-serialisable; ``params`` holds every field of ``fit.params``.
    """
    from ._mtx import jsonable

    params = jsonable(fit.params.to_dict())
    description = "parameters fitted to " + (source or "a screen")
    return {"scenario": {"name": name, "kind": "screen", "description": description},
            "params": params}


def fit_report(fit) -> dict:
    """The fit's diagnostics as a JSON-serialisable dict.

    Parameters
    ----------
    fit : simpert.sim.ScreenFit

    Returns
    -------
    dict
        ``summary`` (quantity, estimate, note rows), ``dispersion_trend``, ``library_*``,
        ``systematic_*``, ``p_effect``, ``pi0``, ``n_genes_used`` and per-gene
        ``genes``, ``gene_means``, ``gene_dispersion``, ``shared_log2fc``.
    """
    from ._mtx import jsonable

    table = fit.summary().table
    return jsonable({
        "summary": table.to_dict(orient="records"),
        "dispersion_trend": list(fit.dispersion_trend),
        "library_log_mean": fit.library_log_mean,
        "library_log_sd_total": fit.library_log_sd_total,
        "library_sd": fit.library_sd,
        "systematic_strength": fit.systematic_strength,
        "systematic_cov": fit.systematic_cov,
        "p_effect": fit.p_effect,
        "pi0": fit.pi0,
        "n_genes_used": dict(fit.n_genes_used),
        "genes": [str(g) for g in fit.gene_means.index],
        "gene_means": fit.gene_means.to_numpy(),
        "gene_dispersion": fit.gene_dispersion.to_numpy(),
        "shared_log2fc": fit.shared_log2fc.to_numpy(),
    })


def scenario_params(scenario) -> dict:
    """Every simulator parameter of a scenario, defaults included, checked by the simulator.

    Parameters
    ----------
    scenario : simpert.calibrate.Scenario

    Returns
    -------
    dict
        ``name``, ``kind``, ``description``, ``test_fraction``, ``source`` and ``params``
        (JSON-serialisable). For ``var_network`` scenarios ``params`` is the scenario's own
        table (the network is built when simulating).

    Raises
    ------
    ValueError
        When a parameter is unknown to the simulator (the message lists the known ones) or
        has a bad value.
    """
    from dataclasses import fields

    from simpert import sim

    from ._mtx import jsonable

    params = scenario.params_dict() if hasattr(scenario, "params_dict") else dict(scenario.params)
    cls = {"screen": sim.ScreenParams, "noise_only": sim.NoiseOnlyParams}.get(scenario.kind)
    if cls is not None:
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(repr(u) for u in unknown)} for a "
                             f"{scenario.kind} scenario; known parameters: {', '.join(known)}")
        obj = cls(**params)
        full = {f.name: getattr(obj, f.name) for f in fields(cls)}
    else:
        full = params
    return jsonable({"name": scenario.name, "kind": scenario.kind, "description": scenario.description,
                     "test_fraction": scenario.test_fraction, "source": scenario.source,
                     "params": full})


def register(app, state: dict) -> None:
    """Add the ``fit`` and ``params`` commands to the ``simpert`` application ``app``."""
    from ._common import CLIError, echo_err, progress, user_errors

    @app.command("fit")
    @user_errors
    def fit_cmd(
        input: Path = typer.Argument(..., help="A screen of cell-level counts: .h5ad file or "
                                     "MatrixMarket directory, with a perturbation column."),
        output: Path = typer.Option(..., "--output", "-o", help="Scenario file to write (.json; "
                                    "usable by 'simpert simulate' and 'simpert calibrate')."),
        control: Optional[str] = typer.Option(None, "--control", help="Control label; default the "
                                              "screen's own or 'control'."),
        min_mean: float = typer.Option(0.5, "--min-mean", help="Genes with a fitted base mean "
                                       "below this are left out of the shared-shift and "
                                       "effect-sparsity estimators."),
        systematic_sd: Optional[float] = typer.Option(None, "--systematic-sd", help="SD of the "
                                                      "shared-response direction B refers to."),
        name: str = typer.Option("fitted", "--name", help="Name of the scenario written."),
        report: Optional[Path] = typer.Option(None, "--report", help="Also write the fit's "
                                              "diagnostics (JSON)."),
    ):
        """Fit simulation parameters to a screen's counts; write them as a scenario file."""
        from simpert import sim

        from .._io import check_output
        from ._inputs import read_screen

        for opt, path in (("--output", output), ("--report", report)):
            if path is not None:
                if path.suffix.lower() != ".json":
                    raise CLIError(f"option '{opt}' must end in .json; got {str(path)!r}")
                check_output(path, name=f"option '{opt}'")
        if not min_mean > 0:
            raise CLIError(f"option '--min-mean' must be positive; got {min_mean}")
        adata = read_screen(input)
        with progress(f"fitting {adata.n_obs} x {adata.n_vars}", quiet=state["quiet"]):
            fit = sim.fit_screen(adata, control=control, systematic_sd=systematic_sd,
                                 min_mean=min_mean)
        _write_json(output, fit_to_scenario(fit, name=name, source=str(input)))
        if report is not None:
            _write_json(report, fit_report(fit))
        if not state["quiet"]:
            echo_err(f"wrote the fitted scenario to {output}")

    @app.command("params")
    @user_errors
    def params_cmd(
        scenario: str = typer.Argument(..., help="Scenario name (see 'simpert scenarios') or file."),
        sets: Optional[List[str]] = typer.Option(None, "--set", help="Override a parameter: "
                                                 "key=value (JSON value). Repeatable."),
    ):
        """Print a scenario's simulator parameters (defaults included) as JSON."""
        from ._inputs import parse_sets, resolve_scenario

        sc = resolve_scenario(scenario, parse_sets(sets))
        typer.echo(json.dumps(scenario_params(sc), indent=1))


def _write_json(path: Path, data: dict) -> None:
    from .._io import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False) + "\n")
