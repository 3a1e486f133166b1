"""Pins: documented defaults, the metrics' source defaults, seeded values and summary statistics.

A one-line slip (a default changed in the signature but not the docs, a seed stream
reordered, a clip dropped, a standard error with ddof 0) changes users' results without
failing a test of behaviour; these tests fail on it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import re

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import simpert as sp
from simpert.calibrate._stats import drf, replicate_statistics
from simpert.metrics import DEFAULT_OPTIONS

NAMESPACES = [sp.sim, sp.de, sp.metrics, sp.calibrate, sp.predict, sp.theory, sp.pl]
_DEFAULT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*:\s*[^\n]*?,?\s*"
                         r"default\s+(.+?)\s*$", re.M)


def _literal(text: str):
    text = text.strip().rstrip(".")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return inspect.Parameter.empty


def _documented_defaults(doc: str) -> dict:
    """name -> default as written in a numpydoc 'name : type, default X' line."""
    out = {}
    for m in _DEFAULT_RE.finditer(doc or ""):
        names = [n.strip() for n in m.group(1).split(",")]
        values = m.group(2)
        parts = [v.strip() for v in values.split(",")] if len(names) > 1 else [values]
        if len(parts) != len(names):
            continue
        for n, v in zip(names, parts):
            value = _literal(v)
            if value is not inspect.Parameter.empty:
                out[n] = value
    return out


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _public_callables():
    seen = set()
    for ns in NAMESPACES:
        for name in ns.__all__:
            obj = getattr(ns, name)
            if id(obj) in seen or not callable(obj):
                continue
            seen.add(id(obj))
            yield f"{ns.__name__}.{name}", obj


def test_documented_defaults_equal_the_signatures():
    checked, wrong = 0, []
    for qual, obj in _public_callables():
        if dataclasses.is_dataclass(obj) and isinstance(obj, type):
            actual = {f.name: f.default for f in dataclasses.fields(obj)
                      if f.default is not dataclasses.MISSING}
        else:
            try:
                sig = inspect.signature(obj)
            except (TypeError, ValueError):
                continue
            actual = {n: p.default for n, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
        for name, doc_value in _documented_defaults(inspect.getdoc(obj)).items():
            if name not in actual:
                continue
            checked += 1
            if not _same(actual[name], doc_value):
                wrong.append(f"{qual}({name}): documented {doc_value!r}, actual {actual[name]!r}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 60, checked  # the parser keeps reading the docs


#: The metrics' options at their sources' values (file read in each source).
SOURCE_DEFAULTS = {
    "fdr": 0.05,   # cell-eval: metrics/_de.py, fdr_threshold = 0.05
    "top_n": 20,   # PEREGGRN: pereggrn/evaluator.py, top-n genes = 20
    "n_de": 20,    # Systema: top 20 DE genes (GEARS top_non_dropout_de_20)
    "n_pcs": 20,   # PEREGGRN: distance_in_pca uses 20 principal components
}


@pytest.mark.parametrize("option", sorted(SOURCE_DEFAULTS))
def test_metric_options_default_to_the_sources_values(option):
    assert DEFAULT_OPTIONS[option] == SOURCE_DEFAULTS[option]


def test_metric_options_table_is_complete():
    assert set(DEFAULT_OPTIONS) == set(SOURCE_DEFAULTS) | {"n_clusters", "chunk_size", "seed"}


# --------------------------------------------------------------------------- seeded values


def test_seeded_screen_is_pinned():
    """Regression anchor: a changed value here must be announced in CHANGELOG.md."""
    a = sp.sim.screen(n_genes=30, n_perturbations=3, n_control_cells=10, cells_per_perturbation=5,
                      n_replicates=2, escape_rate=0.2, systematic_strength=0.5, rng=2026)
    X = a.X.toarray()
    assert a.n_obs == 25 and int(X.sum()) == 943
    assert X[:3, :8].tolist() == [[5, 5, 0, 0, 1, 4, 9, 0], [4, 2, 0, 0, 1, 3, 4, 0], [3, 2, 0, 0, 2, 1, 8, 0]]
    assert X[-1, :8].tolist() == [5, 1, 1, 0, 0, 3, 3, 0]
    tr = a.uns["simpert"]["truth"]
    assert list(tr["targets"]) == ["g00011", "g00024", "g00028"]
    assert int(a.obs["escaped"].sum()) == 5
    # floats: numpy's Generator algorithms are stable; 1e-12 allows another libm's last bits
    assert float(np.asarray(tr["log2fc"]).sum()) == pytest.approx(-4.852234709104051, rel=1e-12)
    assert float(a.obs["size_factor"].iloc[0]) == pytest.approx(1.0747086626201152, rel=1e-12)
    assert float(a.var["base_mean"].iloc[0]) == pytest.approx(4.483767550269173, rel=1e-12)


def test_seeded_noise_only_and_network_are_pinned():
    n = sp.sim.noise_only(n=10, n_genes=5, n_train=5, rng=2026)
    X = np.asarray(n.X)
    assert float(X[0, 0]) == pytest.approx(0.11070911746484001, rel=1e-12)
    assert float(X.sum()) == pytest.approx(-0.6638136518545986, rel=1e-10)
    v = sp.sim.var_network(sp.sim.erdos_renyi(6, 0.4, rng=2026), output="counts", n_samples=3,
                           n_controls=3, rng=2026)
    assert int(v.X.sum()) == 132 and v.X.toarray()[0].tolist() == [2, 0, 1, 1, 2, 0]


# --------------------------------------------------------------------------- calibration statistics


def test_drf_is_clipped_to_minus_one_one():
    assert drf([3.0], [0.0], 1.0) == 1.0          # (3 - 0) / (1 - 0) = 3 -> 1
    assert drf([-5.0], [0.0], 1.0) == -1.0        # -5 -> -1
    assert drf([0.5, 3.0, -5.0], [0.0, 0.0, 0.0], 1.0) == 0.5


def test_summary_standard_error_uses_ddof_one():
    res = sp.calibrate.calibrate(["mse"], ["noise_only"], n_replicates=4, rng=1, executor="serial")
    per_rep = []
    for rep, grp in res.table.groupby("replicate"):
        wide = grp.pivot_table(index="predictor", columns="perturbation", values="value", aggfunc="first")
        per_rep.append(replicate_statistics(wide, higher_is_better=False, best=0.0)["drf_mean"])
    long = res.summary().long
    row = long[(long.metric == "mse") & (long.statistic == "drf_mean")].iloc[0]
    assert row["se"] == pytest.approx(st.sem(per_rep, ddof=1), rel=1e-12)
    assert row["mean"] == pytest.approx(np.mean(per_rep), rel=1e-12)


def test_library_sd_is_corrected_for_count_noise_on_a_shallow_screen():
    """About 50 counts per cell: the raw SD of log totals is 30% above the truth."""
    a = sp.sim.screen(n_genes=2000, n_perturbations=20, n_control_cells=3000, cells_per_perturbation=50,
                      mean_scale=0.05, library_sd=0.2, rng=1)
    fit = sp.sim.fit_screen(a)
    assert fit.library_log_sd_total > 0.25
    assert abs(fit.library_sd / 0.2 - 1) < 0.08, fit.library_sd


def test_verdict_rules_are_pinned():
    from simpert.calibrate import VERDICT_RULES

    assert VERDICT_RULES == (
        ("tau", "ladder tau", "signal", 0.8, ">="),
        ("auroc", "AUROC", "signal", 0.8, ">="),
        ("drf_mean", "DRF vs mean", "signal", 0.2, ">"),
        ("null_level", "noise-only null level", "noise_only", 0.5, "<"),
    )


def test_why_a_statistic_is_undefined_is_reported():
    def no_best(inp):
        return -((inp.pred - inp.real) ** 2).mean(axis=1)

    res = sp.calibrate.calibrate([no_best, "mse"], ["noise_only", "sparse_weak"], n_replicates=1, rng=0,
                                 executor="serial")
    summary = res.summary()
    why = summary.why("no_best", "drf_mean")
    assert why is not None and "best" in why and "noise_only" in why and "sparse_weak" in why
    assert "best" in summary.why("no_best", "drf_mean", scenario="noise_only")
    assert summary.why("mse", "drf_mean") is None  # defined: no reason
    assert summary.why("no_best", "tau") is None  # the ladder's tau needs no best value


def test_var_network_scenario_perturbs_the_genes_of_largest_out_degree():
    from simpert.calibrate._pipeline import default_simulate

    sc = sp.calibrate.load_scenario("var_network")
    adata = default_simulate(sc, rng=np.random.SeedSequence(3))
    W = np.asarray(adata.uns["simpert"]["truth"]["network"])
    genes = list(adata.var_names)
    out_degree = (W != 0).sum(axis=1)
    perturbed = set(map(str, adata.uns["simpert"]["truth"]["targets"]))
    k = len(perturbed)
    assert 0 < k < len(genes)
    # no gene left out has a larger out-degree than a perturbed one
    assert min(out_degree[genes.index(g)] for g in perturbed) >= max(
        out_degree[i] for i, g in enumerate(genes) if g not in perturbed)


def test_power_table_between_screen_sd_uses_ddof_one():
    d = pd.DataFrame({"cells_per_perturbation": 10.0, "pair": "a - b", "metric": "m",
                      "pilot": np.repeat([0, 1, 2], 5), "perturbation": np.tile(list("abcde"), 3),
                      "d": np.r_[np.arange(5.0), np.arange(5.0) + 1, np.arange(5.0) + 3]})
    t = sp.calibrate.sample_sizes(d, n_resamples=200)
    means = [2.0, 3.0, 5.0]
    assert t["delta_sd_between"].iloc[0] == pytest.approx(np.std(means, ddof=1))
    assert t["delta"].iloc[0] == pytest.approx(np.mean(means))
    assert t["sigma"].iloc[0] == pytest.approx(np.std(np.arange(5.0), ddof=1))
