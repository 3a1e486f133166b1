"""Bad parameter values: each message names the parameter, the constraint and the value."""

from __future__ import annotations

import pytest

import simpert.sim as sim

# (callable, kwargs, parameter name, constraint fragment, value fragment)
CASES = [
    (sim.ScreenParams, {"n_genes": 0}, "n_genes", "an integer >= 1", "0"),
    (sim.ScreenParams, {"n_genes": 10.5}, "n_genes", "an integer >= 1", "10.5"),
    (sim.ScreenParams, {"n_perturbations": -1}, "n_perturbations", "an integer >= 0", "-1"),
    (sim.ScreenParams, {"n_genes": 5, "n_perturbations": 6}, "n_perturbations", "at most n_genes", "6"),
    (sim.ScreenParams, {"n_control_cells": 0}, "n_control_cells", "an integer >= 1", "0"),
    (sim.ScreenParams, {"cells_per_perturbation": 0}, "cells_per_perturbation", "(0, inf)", "0"),
    (sim.ScreenParams, {"cell_count_dispersion": -0.1}, "cell_count_dispersion", "[0, inf)", "-0.1"),
    (sim.ScreenParams, {"p_effect": 1.5}, "p_effect", "[0, 1]", "1.5"),
    (sim.ScreenParams, {"p_effect": float("nan")}, "p_effect", "[0, 1]", "nan"),
    (sim.ScreenParams, {"escape_rate": 1.0}, "escape_rate", "[0, 1)", "1.0"),
    (sim.ScreenParams, {"modality": "rnai"}, "modality", "one of 'crispri', 'ko', 'crispra'", "'rnai'"),
    (sim.ScreenParams, {"mean_shape": -2.0}, "mean_shape", "(0, inf)", "-2.0"),
    (sim.ScreenParams, {"dispersion_a0": -1}, "dispersion_a0", "[0, 1000]", "-1"),
    (sim.ScreenParams, {"library_sd": 10}, "library_sd", "[0, 5]", "10"),
    (sim.ScreenParams, {"efficiency_a": 0}, "efficiency_a", "(0, inf)", "0"),
    (sim.ScreenParams, {"n_guides": 0}, "n_guides", "an integer >= 1", "0"),
    (sim.ScreenParams, {"systematic_strength": -0.5}, "systematic_strength", "[0, inf)", "-0.5"),
    (sim.ScreenParams, {"activation_fold": 0.5}, "activation_fold", "[1, inf)", "0.5"),
    (sim.ScreenParams, {"n_genes": 3, "n_perturbations": 1, "gene_means": [1.0, 2.0]}, "gene_means", "length n_genes = 3", "length 2"),
    (sim.ScreenParams, {"n_genes": 2, "n_perturbations": 1, "gene_means": [1.0, -2.0]}, "gene_means", "all values > 0", "-2.0"),
    (sim.ScreenParams, {"control_label": 3}, "control_label", "a string", "3"),
    (sim.noise_only, {"n_train": 1, "n_controls": 1}, "n_train", "at least one perturbed training sample", "1"),
    (sim.noise_only, {"n": 50, "n_train": 50}, "n", "at least one test perturbation", "50"),
    (sim.noise_only, {"noise": "poisson"}, "noise", "one of 'gaussian', 'nb'", "'poisson'"),
    (sim.noise_only, {"sigma": 0}, "sigma", "(0, inf)", "0"),
    (sim.noise_only, {"m": 0}, "m", "an integer >= 1", "0"),
    (sim.NetworkParams, {"spectral_radius": -1.0}, "spectral_radius", "(0, inf) or None", "-1.0"),
    (sim.NetworkParams, {"steps": 0}, "steps", "an integer >= 1 or None", "0"),
    (sim.NetworkParams, {"output": "cells"}, "output", "one of 'continuous', 'counts'", "'cells'"),
    (sim.screen, {"output": "bulk"}, "output", "one of 'cells', 'pseudobulk'", "'bulk'"),
    (sim.screen, {"params": "x"}, "params", "a ScreenParams or None", "'x'"),
]


@pytest.mark.parametrize("fn,kwargs,name,constraint,value", CASES,
                         ids=[f"{c[0].__name__}-{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_bad_parameter_message(fn, kwargs, name, constraint, value):
    if fn is sim.screen and "params" in kwargs:
        call = lambda: fn(kwargs["params"])  # noqa: E731
    else:
        call = lambda: fn(**kwargs)  # noqa: E731
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    msg = str(info.value)
    assert f"parameter {name!r}" in msg, msg
    assert constraint in msg, msg
    assert "got" in msg and value in msg.split("got", 1)[1], msg


def test_unknown_override_is_named():
    with pytest.raises(TypeError, match="'n_gene'"):
        sim.ScreenParams().replace(n_gene=3)


def test_params_are_frozen():
    p = sim.ScreenParams()
    with pytest.raises(Exception):
        p.n_genes = 3  # type: ignore[misc]


@pytest.mark.parametrize("name", ["dispersion_a0", "dispersion_a1"])
def test_dispersion_trend_coefficients_take_the_documented_range(name):
    # docstring: each in [0, 1000]
    import simpert as _sp

    for ok in (0.0, 600.0, 1000.0):
        _sp.sim.ScreenParams(**{name: ok})
    for bad in (-0.1, 1000.5):
        with pytest.raises(ValueError, match=name):
            _sp.sim.ScreenParams(**{name: bad})


@pytest.mark.parametrize("cls", ["ScreenParams", "NetworkParams"])
@pytest.mark.parametrize("name", ["mean_shape", "mean_scale", "min_mean"])
def test_positive_gamma_and_floor_parameters_take_any_positive_value(cls, name):
    # (0, inf): small positive values are accepted, 0 is refused by name
    import simpert as _sp

    P = getattr(_sp.sim, cls)
    for ok in (0.01, 0.3, 1.0, 7.5):
        P(**{name: ok})
    with pytest.raises(ValueError, match=name):
        P(**{name: 0.0})


@pytest.mark.parametrize("name,low,high", [("noise_sd", 0.0, None), ("count_scale", 0.0, None),
                                           ("dispersion_a0", 0.0, 1e3), ("dispersion_a1", 0.0, 1e3),
                                           ("library_sd", 0.0, 5.0), ("library_loc", -20.0, 20.0)])
def test_network_params_closed_ranges_take_their_ends_and_values_between(name, low, high):
    """The documented closed ranges of NetworkParams: both ends and values inside are accepted
    (e.g. a count scale of 0.5, below one), just outside is refused by name."""
    import simpert as _sp

    NP = _sp.sim.NetworkParams
    inside = [low, low + 0.5, low + 0.01] + ([high, high - 0.01] if high is not None else [3.0, 250.0])
    for v in inside:
        NP(**{name: v})
    for v in [low - 0.01] + ([high + 0.01] if high is not None else []):
        with pytest.raises(ValueError, match=name):
            NP(**{name: v})
