"""Metrics written in R, called through rpy2, including from worker processes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from simpert.calibrate import RFunction, r_metric
from simpert.metrics import Metric, MetricInput

R_SOURCE = """
delta_cor <- function(pred, real, pred_control, real_control) {
    stopifnot(is.matrix(pred), identical(dimnames(pred), dimnames(real)),
              identical(names(pred_control), colnames(pred)))
    sapply(seq_len(nrow(pred)), function(i)
        cor(pred[i, ] - pred_control, real[i, ] - real_control))
}
row_mae <- function(pred, real, pred_control, real_control) rowMeans(abs(pred - real))
not_a_function <- 3
wrong_length <- function(pred, real, pred_control, real_control) 1:3
"""


def _input(seed=0, P=4, G=25):
    g = np.random.default_rng(seed)
    return MetricInput(
        pred=g.normal(size=(P, G)), real=g.normal(size=(P, G)),
        pred_control=g.normal(size=G), real_control=g.normal(size=G),
        perturbations=tuple(f"p{i}" for i in range(P)), genes=tuple(f"g{j}" for j in range(G)),
        targets=np.full(P, -1),
    )


def test_r_metric_values_match_numpy(rpy2_robjects):
    m = r_metric(R_SOURCE, function="delta_cor", name="r_delta_cor", best=1.0)
    assert isinstance(m, Metric) and m.name == "r_delta_cor" and m.higher_is_better
    inp = _input()
    dp = inp.pred - inp.pred_control
    dr = inp.real - inp.real_control
    expected = [np.corrcoef(dp[i], dr[i])[0, 1] for i in range(4)]
    np.testing.assert_allclose(m.fn(inp), expected, rtol=1e-12)
    mae = r_metric(R_SOURCE, function="row_mae", higher_is_better=False, best=0.0)
    np.testing.assert_allclose(mae(inp), np.abs(inp.pred - inp.real).mean(axis=1), rtol=1e-12)


def test_r_metric_from_file_and_pickles_as_text(rpy2_robjects, tmp_path):
    f = tmp_path / "metric.R"
    f.write_text(R_SOURCE)
    m = r_metric(file=f, function="row_mae", higher_is_better=False, best=0.0)
    blob = pickle.dumps(m)
    assert b"row_mae" in blob and b"rowMeans" in blob  # the source text travels, not an R object
    back = pickle.loads(blob)
    np.testing.assert_allclose(back.fn(_input(1)), m.fn(_input(1)))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(source=R_SOURCE, function="missing_fn"), ValueError, "parameter 'function' must be the name of a function"),
    (dict(source=R_SOURCE, function="not_a_function"), ValueError, "parameter 'function' must be the name of an R function"),
    (dict(source="f <- function( {", function="f"), ValueError, "parameter 'source' must be valid R code"),
    (dict(function="f"), ValueError, "parameter 'source' must be given exactly when 'file' is not"),
    (dict(source="x", file="y.R", function="f"), ValueError, "parameter 'source' must be given exactly"),
    (dict(file="/nonexistent/metric.R", function="f"), ValueError, "parameter 'file' must be an existing R file"),
    (dict(source=R_SOURCE, function=3), TypeError, "parameter 'function' must be a string naming an R function"),
])
def test_r_metric_bad_input(rpy2_robjects, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        r_metric(**kwargs)


def test_r_metric_wrong_length_raises(rpy2_robjects):
    m = r_metric(R_SOURCE, function="wrong_length")
    with pytest.raises(ValueError, match="must return one number per perturbation"):
        m.fn(_input(P=5))


def test_rfunction_lazy_until_called():
    f = RFunction("f <- function(pred, real, pc, rc) rowSums(pred)", "f")
    assert "source=" in repr(f)
    assert pickle.loads(pickle.dumps(f)).key == f.key
