"""Calibration card and heatmap figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from calibrate_fakes import PIPE, SCEN  # noqa: E402

import simpert.pl as pl  # noqa: E402
from simpert.calibrate import STATISTICS, Scenario, calibrate  # noqa: E402

SWEEP = SCEN + [Scenario(f"systematic_B{b:g}", params={"effect_sd": 1.0}, labels={"B": b}) for b in (0, 1, 2)]


@pytest.fixture(scope="module")
def cal():
    return calibrate(["neg_l2_truth", "corr", "neg_l2"], SWEEP, n_replicates=3, rng=0, executor="serial",
                     pipeline=PIPE)


def test_card_has_six_panels_and_verdict(cal, tmp_path):
    fig = pl.calibration_card(cal, "neg_l2_truth")
    axes = [a for a in fig.axes if a.get_title()]
    assert len(axes) == 6
    titles = " ".join(a.get_title() for a in axes)
    for word in ("Ladder", "Dynamic range", "Null level", "duplicate", "target gene", "Systematic"):
        assert word in titles
    texts = [t.get_text() for t in fig.texts]
    assert any(t.startswith("neg_l2_truth: ") for t in texts)
    # the ladder panel draws one line per scenario, its points the mean of per-replicate medians
    ladder = axes[0]
    assert len(ladder.lines) == len(SWEEP)
    t = cal.table
    sub = t[(t.metric == "neg_l2_truth") & (t.scenario == "easy") & (t.predictor == "ladder(0.5)")]
    expected = sub.groupby("replicate")["value"].median().mean()
    line = next(ln for ln in ladder.lines if ln.get_label() == "easy")
    assert line.get_ydata()[list(line.get_xdata()).index(0.5)] == pytest.approx(expected)
    fig.savefig(tmp_path / "card.png", dpi=60)
    assert (tmp_path / "card.png").stat().st_size > 10_000
    plt.close(fig)


def test_card_into_given_figure_and_metric_errors(cal):
    fig = plt.figure()
    assert pl.calibration_card(cal, "corr", fig=fig) is fig
    plt.close(fig)
    with pytest.raises(ValueError, match="parameter 'metric' must be one of the run's metrics"):
        pl.calibration_card(cal)
    with pytest.raises(ValueError, match="parameter 'metric' must be one of"):
        pl.calibration_card(cal, "nope")
    with pytest.raises(TypeError, match="parameter 'cal' must be a CalibrationResult"):
        pl.calibration_card(cal.table, "corr")


@pytest.mark.parametrize("stat", STATISTICS)
def test_heatmap_values(cal, stat):
    s = cal.summary()
    fig = pl.calibration_heatmap(s, stat=stat)
    ax = fig.axes[0]
    img = ax.images[0].get_array()
    np.testing.assert_allclose(np.ma.filled(img, np.nan), s.stat(stat).to_numpy(dtype=float), equal_nan=True)
    assert [t.get_text() for t in ax.get_yticklabels()] == s.metrics
    plt.close(fig)


def test_heatmap_bad_stat(cal):
    with pytest.raises(ValueError, match="parameter 'stat' must be one of 'drf_mean'"):
        pl.calibration_heatmap(cal, stat="accuracy")


def test_heatmap_into_given_axes_draws_only_there(cal):
    s = cal.summary()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    before = [a.get_position().bounds for a in axes]
    layout = fig.subplotpars.left, fig.subplotpars.right, fig.subplotpars.bottom, fig.subplotpars.top
    out = pl.calibration_heatmap(s, "tau", ax=axes[1])
    assert out is fig
    assert len(fig.axes) == 2  # no colour bar axes added
    assert len(axes[1].images) == 1 and len(axes[0].images) == 0
    assert [a.get_position().bounds for a in axes] == before  # no tight_layout, no stolen space
    assert (fig.subplotpars.left, fig.subplotpars.right, fig.subplotpars.bottom, fig.subplotpars.top) == layout
    # a colour bar on request
    pl.calibration_heatmap(s, "auroc", ax=axes[0], colorbar=True)
    assert len(fig.axes) == 3
    plt.close(fig)
    # its own figure keeps its colour bar
    own = pl.calibration_heatmap(s, "tau")
    assert len(own.axes) == 2
    plt.close(own)
    with pytest.raises(TypeError, match="parameter 'ax' must be a matplotlib Axes"):
        pl.calibration_heatmap(s, "tau", ax="left")


def test_card_and_heatmap_say_why_a_cell_is_undefined(cal):
    s = cal.summary()
    # the fakes' control predicts zeros: its correlation is 0/0, so DRF vs control is NaN
    assert "control baseline is NaN" in s.why("corr", "drf_control")
    assert s.why("neg_l2", "drf_control") is None
    fig = pl.calibration_heatmap(s, "drf_control")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("n/a") == int(np.isnan(s.stat("drf_control").to_numpy(dtype=float)).sum()) > 0
    plt.close(fig)
    card = pl.calibration_card(cal, "corr")
    assert any("control baseline is NaN" in t.get_text() for t in card.texts)
    plt.close(card)
