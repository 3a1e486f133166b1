"""What the calibration must show on simulated screens (real simulators, predictors, metrics).

- a metric that returns pure noise has DRF and ladder tau near 0;
- the negative distance to the oracle has ladder tau = 1;
- control-referenced pearson_delta has a large null level on noise-only data, the
  perturbed-centroid version does not;
- PDS with one-sided target exclusion gives a constant prediction more than (N+1)/(2N);
- an R function metric is calibrated from Python (in joblib workers) and equals the
  Python pearson_delta.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest

from simpert import metrics as M
from simpert.calibrate import Pipeline, calibrate, r_metric, with_options

N_REP = 4
SCENARIOS = ["noise_only", "sparse_strong"]


def pure_noise(inp):
    """Uniform noise, a deterministic function of the input bytes."""
    seed = zlib.crc32(np.ascontiguousarray(inp.pred).tobytes()) ^ zlib.crc32(np.ascontiguousarray(inp.real).tobytes())
    return np.random.default_rng(seed).random(inp.pred.shape[0])


pure_noise.higher_is_better = True
pure_noise.best = 1.0


class OracleDistance:
    """Marker metric: negative Euclidean distance of each prediction to the oracle's."""

    name = "neg_distance_to_oracle"
    higher_is_better = True
    best = 0.0

    def __call__(self, inp):  # pragma: no cover - scored by score_with_oracle
        raise NotImplementedError("needs the oracle's profiles: scored by the pipeline's score step")


def score_with_oracle(preds, adata, split, *, metrics, **options):
    """simpert.metrics.score, plus the oracle-distance marker (it needs the oracle's profiles)."""
    if metrics and isinstance(metrics[0], OracleDistance):
        oracle = preds["oracle"].profiles
        rows = []
        for name, pred in preds.items():
            d = -np.sqrt(((pred.profiles.loc[oracle.index, oracle.columns] - oracle) ** 2).sum(axis=1))
            rows.append(pd.DataFrame({"predictor": name, "perturbation": oracle.index,
                                      "metric": OracleDistance.name, "value": d.to_numpy()}))
        return pd.concat(rows, ignore_index=True)
    return M.score(preds, adata, split, metrics=metrics, **options)


PIPE = Pipeline(score=score_with_oracle)


@pytest.fixture(scope="module")
def cal():
    return calibrate(
        [pure_noise, OracleDistance(), "pearson_delta",
         with_options("pearson_delta", reference="centroid", label="pearson_delta_centroid"),
         "discrimination_score_l1",
         with_options("discrimination_score_l1", target="include", label="pds_l1_include")],
        SCENARIOS, n_replicates=N_REP, rng=7, executor="joblib", n_jobs=2, pipeline=PIPE,
    )


def test_runs_clean(cal):
    assert cal.errors.empty, cal.errors.to_string()
    assert set(cal.table["scenario"]) == set(SCENARIOS)


def test_pure_noise_has_drf_and_tau_near_zero(cal):
    s = cal.summary().per_replicate.query("metric == 'pure_noise'")
    assert abs(s["tau"].mean()) < 0.2
    assert abs(s["drf_mean"].mean()) < 0.25
    assert abs(s["drf_control"].mean()) < 0.25
    assert abs(s["auroc"].mean() - 0.5) < 0.15


def test_negative_distance_to_oracle_has_tau_one(cal):
    tab = cal.summary().table
    for sc in SCENARIOS:
        assert tab.loc[("neg_distance_to_oracle", sc), "tau"] == 1.0
    assert tab.loc[("neg_distance_to_oracle", "sparse_strong"), "specificity"] > 0


def test_pearson_delta_null_level_control_vs_centroid(cal):
    tab = cal.summary().table
    ctrl = tab.loc[("pearson_delta", "noise_only"), "null_level"]
    cent = tab.loc[("pearson_delta_centroid", "noise_only"), "null_level"]
    # the mean baseline's skill over an independent replicate on pure noise is the shared-
    # control correlation (PEREGGRN): rho = (1/n_c) / sqrt((1/N_p + 1/n_c)(1/m + 1/n_c)) in
    # cells (30 control cells, 30 per test perturbation, 12 x 30 pooled training cells)
    # while the replicate, with its own controls, scores about 0
    n_c, m, n_p = 30, 30, 12 * 30
    rho = (1 / n_c) / np.sqrt((1 / n_p + 1 / n_c) * (1 / m + 1 / n_c))
    assert ctrl == pytest.approx(rho, abs=0.1)
    assert ctrl > 0.5  # flagged by the verdict
    assert "noise-only null level" in cal.summary().verdict("pearson_delta").split(" - ")[1].split("not judged")[0]
    assert not cent > 0.3  # the centred version: undefined (constant delta) or small
    # the illusion itself: on pure noise the oracle correlates with the observation through
    # the shared control profile, not through the perturbed centroid
    t = cal.table[(cal.table.scenario == "noise_only") & (cal.table.predictor == "oracle")]
    by = t.groupby("metric")["value"].median()
    assert by["pearson_delta"] > 0.5
    assert abs(by["pearson_delta_centroid"]) < 0.35
    # with real effects the control-referenced null level drops
    assert tab.loc[("pearson_delta", "sparse_strong"), "null_level"] < ctrl


def test_pds_one_sided_exclusion_rewards_constant_prediction(cal):
    t = cal.table[cal.table.predictor.isin(["mean", "control"])]
    n_test = t.groupby(["scenario", "replicate", "predictor", "metric"])["perturbation"].nunique()
    N = int(n_test.iloc[0])
    assert (n_test == N).all()
    chance = (N + 1) / (2 * N)
    per = t.groupby(["scenario", "replicate", "predictor", "metric"])["value"].mean().unstack("metric")
    # without exclusion a constant prediction gets exactly (N+1)/(2N) (ranks 0..N-1 once each)
    np.testing.assert_allclose(per["pds_l1_include"], chance, atol=1e-12)
    # one-sided exclusion: a constant prediction's own target gene is dropped from its
    # distance to its own perturbation (where the knockdown sits) and not from the others,
    # which favours it wherever the knockdown is real
    strong = per.loc["sparse_strong", "discrimination_score_l1"]
    assert (strong >= chance).all() and (strong > chance).mean() >= 0.75, strong
    assert strong.mean() > chance + 0.01
    # on noise-only data the targets do not move, and the bias disappears
    noise = per.loc["noise_only", "discrimination_score_l1"]
    assert abs(noise.mean() - chance) < abs(strong.mean() - chance)


R_DELTA_COR = """
delta_cor <- function(pred, real, pred_control, real_control) {
    sapply(seq_len(nrow(pred)), function(i)
        cor(pred[i, ] - pred_control, real[i, ] - real_control))
}
"""


def test_r_function_metric_calibrated_from_python(rpy2_robjects):
    rm = r_metric(R_DELTA_COR, function="delta_cor", name="r_delta_cor", best=1.0)
    cal = calibrate([rm, "pearson_delta"], ["sparse_strong"], ["oracle", "mean", "technical_duplicate",
                    "ladder(0)", "ladder(0.5)", "ladder(1)"], n_replicates=2, rng=3, executor="joblib", n_jobs=2)
    assert cal.errors.empty, cal.errors.to_string()
    w = cal.table.pivot_table(index=["replicate", "predictor", "perturbation"], columns="metric", values="value")
    np.testing.assert_allclose(w["r_delta_cor"], w["pearson_delta"], rtol=1e-10, atol=1e-12)
    s = cal.summary().table
    assert s.loc[("r_delta_cor", "sparse_strong"), "tau"] == pytest.approx(
        s.loc[("pearson_delta", "sparse_strong"), "tau"])
    assert cal.metrics["r_delta_cor"].best == 1.0
