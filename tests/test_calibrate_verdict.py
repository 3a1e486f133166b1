"""The verdict line of a calibration summary, built from hand-made statistics: its grade, the
thresholds of each check, and the reason quoted for each check it cannot judge."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simpert.calibrate import STATISTICS
from simpert.calibrate._results import NOTE_COLUMNS, CalibrationSummary

# Values that pass every check of VERDICT_RULES and the target-gene check.
GOOD = {"drf_mean": 0.5, "drf_control": 0.5, "tau": 0.9, "auroc": 0.9, "null_level": 0.1,
        "target_gain": 0.1, "systematic_gain": 0.0, "specificity": 1.0}


def _summary(values, notes=(), metrics=("m",), scenarios=("noise_only", "sparse")):
    """A summary whose per-scenario means are ``values[(metric, scenario)][statistic]``
    (a dict, or one dict used for every cell); NaN means undefined (n = 0)."""
    rows = []
    for m in metrics:
        for sc in scenarios:
            cell = values.get((m, sc), values) if isinstance(values, dict) else values
            for st in STATISTICS:
                v = float(cell.get(st, GOOD[st]))
                rows.append((m, sc, st, v, float("nan"), 0 if math.isnan(v) else 3, float("nan")))
    long = pd.DataFrame(rows, columns=["metric", "scenario", "statistic", "mean", "se", "n", "B"])
    notes = pd.DataFrame(list(notes), columns=list(NOTE_COLUMNS))
    return CalibrationSummary(long, None, list(metrics), list(scenarios), {}, pd.DataFrame(), notes=notes)


def _grade(line):
    return line.split(": ", 1)[1].split(" - ", 1)[0]


def test_all_checks_pass_is_good_and_lists_the_passed_checks():
    # kills a mutant of the grade rule (len(fine) >= 3) or of a check's direction
    line = _summary({}).verdict("m")
    assert line == ("m: GOOD - ladder tau 0.90; AUROC 0.90; DRF vs mean 0.50; noise-only null level 0.10; "
                    "target gene alone earns little")


@pytest.mark.parametrize("stat,at,passes", [
    ("tau", 0.8, True), ("tau", 0.79, False),            # ladder tau >= 0.8
    ("auroc", 0.8, True), ("auroc", 0.79, False),        # AUROC >= 0.8
    ("drf_mean", 0.2, False), ("drf_mean", 0.21, True),  # DRF vs mean > 0.2
    ("null_level", 0.5, False), ("null_level", 0.49, True),  # null level < 0.5
])
def test_each_check_at_its_threshold(stat, at, passes):
    # kills <-> <= / > <-> >= and threshold-number mutants of VERDICT_RULES and their reading
    where = "noise_only" if stat == "null_level" else "sparse"
    s = _summary({("m", where): {stat: at}, ("m", "other" if where == "sparse" else "sparse"): {}},
                 scenarios=("noise_only", "sparse"))
    line = s.verdict("m")
    assert _grade(line) == ("GOOD" if passes else "MIXED"), line
    if not passes:
        assert f"{at:.2f}" in line.split(" - ", 1)[1]


def test_signal_checks_read_the_median_over_signal_scenarios_only():
    # kills mutants of the split into noise_only and signal scenarios (s == / != "noise_only")
    vals = {("m", "noise_only"): {"tau": 0.0, "auroc": 0.0, "drf_mean": -1.0, "null_level": 0.1},
            ("m", "a"): {"tau": 0.85}, ("m", "b"): {"tau": 0.95}, ("m", "c"): {"tau": 0.9}}
    line = _summary(vals, scenarios=("noise_only", "a", "b", "c")).verdict("m")
    assert _grade(line) == "GOOD"
    assert "ladder tau 0.90" in line  # median of 0.85, 0.95, 0.9 (noise_only's 0 left out)
    # and the null level is read on noise_only only
    vals[("m", "a")]["null_level"] = 0.9
    assert _grade(_summary(vals, scenarios=("noise_only", "a", "b", "c")).verdict("m")) == "GOOD"
    vals[("m", "noise_only")]["null_level"] = 0.6
    line = _summary(vals, scenarios=("noise_only", "a", "b", "c")).verdict("m")
    assert "noise-only null level 0.60" in line and _grade(line) == "MIXED"


@pytest.mark.parametrize("tgain,spec,issue", [
    (0.0, 1.0, False),   # nothing earned: fine (tgain > 0)
    (0.0, 0.0, False),   # nothing earned and no specificity: still fine (tgain > 0, not >= 0)
    (0.0, -1.0, False),
    (0.5, 1.0, True),    # exactly half the specificity: an issue (tgain >= 0.5 * spec)
    (0.49, 1.0, False),  # just under half: fine
    (0.1, 0.0, True),    # positive gain, no specificity: an issue (spec <= 0)
    (0.1, -1.0, True),
    (0.3, 0.5, True),    # 0.3 >= 0.25
    (0.2, 0.5, False),   # 0.2 < 0.25 (a 0.5 -> 0.25 slip would flag it)
])
def test_target_gene_check(tgain, spec, issue):
    # kills mutants of `tgain > 0 and (spec <= 0 or tgain >= 0.5 * spec)`
    line = _summary({"target_gain": tgain, "specificity": spec}).verdict("m")
    if issue:
        assert f"target gene alone earns {tgain:.2g} (oracle vs shuffled {spec:.2g})" in line
        assert _grade(line) == "MIXED"
    else:
        assert "target gene alone earns little" in line and _grade(line) == "GOOD"


def test_grades_by_number_of_failed_and_passed_checks():
    # kills mutants of `len(issues) >= 3` (POOR) and `not fine` and of `len(fine) >= 3` (GOOD)
    two_fail = {"tau": 0.1, "auroc": 0.1}
    three_fail = {"tau": 0.1, "auroc": 0.1, "drf_mean": 0.0}
    assert _grade(_summary(two_fail).verdict("m")) == "MIXED"
    assert _grade(_summary(three_fail).verdict("m")) == "POOR"
    all_fail = {"tau": 0.1, "auroc": 0.1, "drf_mean": 0.0, "null_level": 0.9, "target_gain": 0.9}
    line = _summary(all_fail).verdict("m")
    assert _grade(line) == "POOR" and "earns little" not in line
    # three judged checks, all passed: GOOD; two judged, both passed: MIXED
    nan = float("nan")
    three_judged = {"tau": nan, "auroc": nan}  # leaves DRF, null level, target gene
    assert _grade(_summary(three_judged).verdict("m")) == "GOOD"
    two_judged = {"tau": nan, "auroc": nan, "drf_mean": nan}
    assert _grade(_summary(two_judged).verdict("m")) == "MIXED"
    # one judged check that fails and nothing passed: POOR (`not fine`)
    one_fail = {"tau": nan, "auroc": nan, "drf_mean": nan, "null_level": nan, "target_gain": 0.9}
    assert _grade(_summary(one_fail).verdict("m")) == "POOR"


def test_not_judged_checks_quote_the_reason_of_their_own_statistic_metric_and_scenarios():
    # kills _results.py `self.notes["statistic"] == col`, `["metric"] == name`, `.isin(rows)` and
    # `iloc[0]` mutants: each undefined check must quote its own note, not another's
    nan = float("nan")
    vals = {("m", "noise_only"): {"tau": nan, "drf_mean": nan},
            ("m", "sparse"): {"tau": nan, "drf_mean": nan},
            ("other", "noise_only"): {"tau": nan, "drf_mean": nan},
            ("other", "sparse"): {"tau": nan, "drf_mean": nan}}
    notes = [
        ("other", "sparse", "drf_mean", "reason of another metric"),
        ("m", "noise_only", "drf_mean", "reason on noise_only"),
        ("m", "sparse", "tau", "the ladder is constant"),
        ("m", "sparse", "drf_mean", "no best value"),
        ("other", "sparse", "tau", "reason of another metric, tau"),
    ]
    s = _summary(vals, notes=notes, metrics=("other", "m"))
    line = s.verdict("m")
    assert line == ("m: GOOD - AUROC 0.90; noise-only null level 0.10; target gene alone earns little; "
                    "not judged: ladder tau (the ladder is constant); DRF vs mean (no best value)")


def test_not_judged_checks_sharing_a_reason_are_grouped_and_missing_notes_say_undefined():
    # kills mutants of the grouping of skipped checks and of the fallback reasons
    nan = float("nan")
    s = _summary({"tau": nan, "auroc": nan}, scenarios=("sparse",))
    line = s.verdict("m")
    # no noise_only scenario: the null level is not judged for that reason; tau and AUROC have no note
    assert line == ("m: MIXED - DRF vs mean 0.50; target gene alone earns little; "
                    "not judged: ladder tau, AUROC (undefined); "
                    "noise-only null level (no noise_only scenario in the run)")


def test_target_gene_check_not_judged_quotes_the_undefined_statistic():
    # kills mutants of which column (target_gain or specificity) the skipped check quotes
    nan = float("nan")
    notes = [("m", "sparse", "specificity", "shuffled oracle undefined"),
             ("m", "sparse", "target_gain", "no target gene")]
    line = _summary({"specificity": nan}, notes=notes).verdict("m")
    assert line.endswith("not judged: target-gene check (shuffled oracle undefined)")
    line = _summary({"target_gain": nan}, notes=notes).verdict("m")
    assert line.endswith("not judged: target-gene check (no target gene)")


def test_median_ignores_nan_scenarios():
    # kills mutants of the finite filter in the median over scenarios
    vals = {("m", "a"): {"tau": float("nan")}, ("m", "b"): {"tau": 0.82}, ("m", "c"): {"tau": 0.84}}
    line = _summary(vals, scenarios=("noise_only", "a", "b", "c")).verdict("m")
    assert "ladder tau 0.83" in line
    assert np.median([0.82, 0.84]) == pytest.approx(0.83)


@pytest.mark.parametrize("statistic,reason", [
    ("null_level", "the best value does not lie above the technical duplicate's score (no room)"),
    ("systematic_gain", "the oracle's median score is 0"),
    ("auroc", "zero denominator or no finite paired values"),
    ("drf_mean", "zero denominator or no finite paired values"),
])
def test_reason_when_every_input_is_finite_names_the_statistics_own_cause(statistic, reason):
    # kills _stats.undefined_reason mutants that give one statistic's cause to another
    # (`statistic == "null_level"`, `== "systematic_gain"`): all inputs finite, best value known
    from simpert.calibrate._stats import undefined_reason

    names = ["technical_duplicate", "mean", "control", "oracle", "systematic_only", "target_only", "shuffled"]
    wide = pd.DataFrame(np.ones((len(names), 4)), index=names)
    assert undefined_reason(wide, statistic, best=1.0) == reason
