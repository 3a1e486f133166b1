"""The calibration harness with a small stand-in pipeline (injected through ``Pipeline``).

The stand-ins simulate Gaussian "profiles" with known truth, so the harness (seeding,
executors, error handling, result tables) is tested independently of the simulators.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibrate_fakes import PIPE, SCEN, FakeMetric, _broken
from simpert.calibrate import STANDARD_PREDICTORS, CalibrationSummary, calibrate, with_options

# --------------------------------------------------------------------------- tests
def test_table_schema_and_counts():
    cal = calibrate(["neg_l2", "corr"], SCEN, n_replicates=3, rng=5, executor="serial", pipeline=PIPE)
    t = cal.table
    assert list(t.columns) == ["scenario", "replicate", "predictor", "perturbation", "metric", "value"]
    assert t["value"].dtype == np.float64 and t["replicate"].dtype == np.int64
    # 2 scenarios x 3 replicates x 12 predictors x 6 test perturbations x 2 metrics
    assert len(t) == 2 * 3 * len(STANDARD_PREDICTORS) * 6 * 2
    assert cal.errors.empty
    assert set(t["predictor"]) == set(STANDARD_PREDICTORS)


def test_same_seed_same_bytes_and_different_seed_differs():
    a = calibrate(["neg_l2"], SCEN, n_replicates=2, rng=11, executor="serial", pipeline=PIPE)
    b = calibrate(["neg_l2"], SCEN, n_replicates=2, rng=11, executor="serial", pipeline=PIPE)
    c = calibrate(["neg_l2"], SCEN, n_replicates=2, rng=12, executor="serial", pipeline=PIPE)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    assert not np.array_equal(a.table["value"].to_numpy(), c.table["value"].to_numpy())


def test_executors_identical_bytes():
    kw = dict(n_replicates=3, rng=2024, pipeline=PIPE)
    serial = calibrate(["neg_l2", "corr"], SCEN, executor="serial", **kw)
    jl = calibrate(["neg_l2", "corr"], SCEN, executor="joblib", n_jobs=2, **kw)
    dk = calibrate(["neg_l2", "corr"], SCEN, executor="dask", n_jobs=2, **kw)
    for other in (jl, dk):
        pd.testing.assert_frame_equal(serial.table, other.table, check_exact=True)
        assert serial.table["value"].to_numpy().tobytes() == other.table["value"].to_numpy().tobytes()


def test_dask_with_given_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        via_client = calibrate(["corr"], SCEN[:1], n_replicates=2, rng=3, executor="dask",
                               client=client, pipeline=PIPE)
        via_address = calibrate(["corr"], SCEN[:1], n_replicates=2, rng=3, executor="dask",
                                client=cluster.scheduler_address, pipeline=PIPE)
    serial = calibrate(["corr"], SCEN[:1], n_replicates=2, rng=3, executor="serial", pipeline=PIPE)
    pd.testing.assert_frame_equal(serial.table, via_client.table, check_exact=True)
    pd.testing.assert_frame_equal(serial.table, via_address.table, check_exact=True)


def test_failing_metric_reported_rest_kept():
    def callable_metric(pred, real, truth):
        return np.abs(pred - real).mean(axis=1)

    callable_metric.higher_is_better = False
    callable_metric.best = 0.0
    bad = FakeMetric("bad_callable", _broken)
    cal = calibrate(["neg_l2", "broken", "corr", bad, FakeMetric("mae", callable_metric, False, 0.0)],
                    SCEN, n_replicates=2, rng=0, executor="serial", pipeline=PIPE)
    err = cal.errors.set_index(["metric", "scenario"])
    assert set(err.index) == {("broken", "easy"), ("broken", "hard"),
                              ("bad_callable", "easy"), ("bad_callable", "hard")}
    assert (err["n_failed"] == 2).all()
    assert err["message"].str.contains("RuntimeError: this metric always fails").all()
    assert set(cal.table["metric"]) == {"neg_l2", "corr", "mae"}
    s = cal.summary()
    assert set(s.metrics) == {"neg_l2", "corr", "mae"}
    assert "failed" in str(s)


def test_options_variant_labels_and_values():
    cal = calibrate(["neg_l2", with_options("neg_l2", scale=2.0, label="neg_l2_x2"), ("corr", {"scale": 3.0})],
                    SCEN[:1], n_replicates=1, rng=0, executor="serial", pipeline=PIPE)
    t = cal.table.pivot_table(index=["predictor", "perturbation"], columns="metric", values="value")
    assert list(cal.metrics) == ["neg_l2", "neg_l2_x2", "corr[scale=3.0]"]
    np.testing.assert_allclose(t["neg_l2_x2"], 2 * t["neg_l2"])


def test_summary_statistics_on_stand_in():
    cal = calibrate(["neg_l2", "corr", "neg_l2_truth"], SCEN, n_replicates=4, rng=1, executor="serial",
                    pipeline=PIPE)
    s = cal.summary()
    assert isinstance(s, CalibrationSummary)
    tab = s.table
    assert list(tab.index.names) == ["metric", "scenario"]
    # negative distance to the truth decreases exactly along the ladder
    assert tab.loc[("neg_l2_truth", "easy"), "tau"] == 1.0
    assert tab.loc[("neg_l2_truth", "hard"), "tau"] == 1.0
    # the per-replicate statistic is recomputed by hand for one replicate
    sub = cal.table[(cal.table.metric == "neg_l2") & (cal.table.scenario == "easy") & (cal.table.replicate == 0)]
    w = sub.pivot(index="predictor", columns="perturbation", values="value")
    dup, mean = w.loc["technical_duplicate"], w.loc["mean"]
    expect = np.median(np.clip((dup - mean) / (0.0 - mean), -1, 1))
    got = s.per_replicate.query("metric == 'neg_l2' and scenario == 'easy' and replicate == 0")["drf_mean"]
    assert float(got.iloc[0]) == pytest.approx(expect)
    assert s.stat("tau").shape == (3, 2)
    assert s.long.loc[s.long.scenario == "hard", "B"].eq(1.0).all()
    assert "ladder tau" in str(s)
    assert s.verdict("neg_l2").startswith("neg_l2: ")


def test_metrics_all_and_save(tmp_path):
    cal = calibrate("all", SCEN[:1], n_replicates=1, rng=0, executor="serial", pipeline=PIPE)
    assert list(cal.metrics) == ["neg_l2", "corr"]
    d = cal.save(tmp_path / "out")
    back = pd.read_parquet(d / "table.parquet")
    pd.testing.assert_frame_equal(back, cal.table)
    assert (d / "summary.csv").is_file()


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_replicates=0), "parameter 'n_replicates' must be an integer >= 1; got 0"),
    (dict(executor="spark"), "parameter 'executor' must be one of 'serial', 'joblib', 'dask'; got 'spark'"),
    (dict(n_jobs=0), "parameter 'n_jobs' must be an integer >= 1 or None; got 0"),
    (dict(predictors="oracle"), "parameter 'predictors' must be a non-empty list"),
    (dict(executor="serial", client="tcp://x:1"), "parameter 'client' must be None unless"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        calibrate(["neg_l2"], SCEN[:1], pipeline=PIPE, **kwargs)


def test_bad_metric_entries():
    with pytest.raises(TypeError, match="parameter 'metrics' must be"):
        calibrate([3.5], SCEN[:1], pipeline=PIPE)
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        calibrate(["nope"], SCEN[:1], pipeline=PIPE)
    with pytest.raises(ValueError, match="distinct labels"):
        calibrate(["corr", "corr"], SCEN[:1], pipeline=PIPE)


def _l2_error(pred, real, truth):
    return np.sqrt(((pred - real) ** 2).sum(axis=1))


def test_verdict_reachable_for_an_error_and_the_same_for_its_negation():
    from simpert.calibrate import VERDICT_RULES, Scenario

    assert [r[0] for r in VERDICT_RULES] == ["tau", "auroc", "drf_mean", "null_level"]
    err = FakeMetric("l2_error", _l2_error, False, 0.0)
    neg = FakeMetric("neg_l2_error", lambda p, r, t: -_l2_error(p, r, t), True, 0.0)
    scen = [Scenario("noise_only", params={"effect_sd": 0.0, "sigma": 1.0}), SCEN[0]]
    cal = calibrate([err, neg], scen, n_replicates=3, rng=1, executor="serial", pipeline=PIPE)
    s = cal.summary()
    a, b = s.metric("l2_error"), s.metric("neg_l2_error")
    # orientation-free statistics (the systematic gain is a ratio to the oracle's score)
    pd.testing.assert_frame_equal(a.drop(columns="systematic_gain"), b.drop(columns="systematic_gain"),
                                  check_names=False)
    # on pure noise the mean baseline earns little over a replicate: for a Euclidean error
    # the replicate's distance is about sqrt(2) times the mean baseline's, so the null
    # level is about 1 - 1 / sqrt(2) (the mean baseline pools the training perturbations)
    n_train = 12 - max(1, round(0.5 * 12))
    expect = 1 - np.sqrt(1 + 1 / n_train) / np.sqrt(2)
    assert a.loc["noise_only", "null_level"] == pytest.approx(expect, abs=0.05)
    assert a.loc["noise_only", "null_level"] < 0.5
    for m in ("l2_error", "neg_l2_error"):
        v = s.verdict(m)
        assert v.startswith(f"{m}: GOOD - "), v
        assert "null level" in v
