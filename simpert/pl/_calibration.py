"""Figures of a calibration run: one metric's card, and a metrics x scenarios heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import Instance, OneOf, check, fail

__all__ = ["calibration_card", "calibration_heatmap"]

_STAT_TITLES = {
    "drf_mean": "Dynamic range fraction vs mean baseline",
    "drf_control": "Dynamic range fraction vs control",
    "tau": "Kendall tau along the ladder",
    "auroc": "AUROC: technical duplicate vs mean baseline",
    "null_level": "Null level (mean baseline's skill over a replicate, noise-only)",
    "target_gain": "Target-gene gain (target-only minus control)",
    "systematic_gain": "Systematic gain (systematic-only / oracle)",
    "specificity": "Specificity (oracle minus shuffled)",
}
# (vmin, vmax, centre) of each statistic's colour scale
_STAT_SCALE = {
    "drf_mean": (-1, 1, 0), "drf_control": (-1, 1, 0), "tau": (-1, 1, 0), "auroc": (0, 1, 0.5),
    "null_level": (-1, 1, 0), "systematic_gain": (-1, 1, 0),
}


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _as_result(cal):
    from simpert.calibrate import CalibrationResult

    check("cal", cal, Instance((CalibrationResult,), "a CalibrationResult (from simpert.calibrate.calibrate)"))
    return cal


def _ladder_curve(table, metric):
    from simpert.calibrate._stats import ladder_alpha

    sub = table[table["metric"] == metric]
    alpha = sub["predictor"].map(ladder_alpha)
    sub = sub.assign(alpha=alpha)[alpha.notna().to_numpy()]
    if sub.empty:
        return pd.DataFrame()
    per_rep = sub.groupby(["scenario", "replicate", "alpha"], sort=False)["value"].median()
    return per_rep.groupby(["scenario", "alpha"], sort=False).mean().unstack("alpha").sort_index(axis=1)


def calibration_card(cal, metric: str | None = None, *, fig=None):
    """One metric's calibration card: can a person trust this metric?

    Six panels, each across the run's scenarios: (a) the ladder curve (score as the
    prediction moves from the mean baseline, alpha = 0, to the truth, alpha = 1); (b) the
    dynamic range fraction of the technical duplicate against the mean baseline and
    against control; (c) the null level (mean baseline relative to the oracle); (d) the
    per-perturbation scores of the technical duplicate and of the mean baseline, with the
    AUROC separating them; (e) what the target gene alone earns next to the specificity
    (oracle vs shuffled labels); (f) the systematic gain as the shared response B grows.
    The title carries a one-line verdict (``CalibrationSummary.verdict``).

    Parameters
    ----------
    cal : CalibrationResult
        The run (from :func:`simpert.calibrate.calibrate`).
    metric : str, optional
        Metric label; may be omitted when the run has one metric.
    fig : matplotlib Figure, optional
        Figure to draw into (cleared first); default a new 15 x 8.5 inch figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    cal = _as_result(cal)
    labels = list(cal.metrics)
    if metric is None:
        if len(labels) != 1:
            fail("metric", "one of the run's metrics (" + ", ".join(labels) + ") when it has several", metric)
        metric = labels[0]
    check("metric", metric, OneOf(tuple(labels)))
    plt = _pyplot()
    summary = cal.summary()
    if metric not in summary.metrics:
        fail("metric", "a metric with scores in the run (it failed everywhere: see cal.errors)", metric)
    info = cal.metrics[metric]
    stats = summary.long[summary.long["metric"] == metric]
    scen = [s for s in summary.scenarios if s in set(stats["scenario"])]
    mean = stats.pivot_table(index="scenario", columns="statistic", values="mean", dropna=False).reindex(scen)
    se = stats.pivot_table(index="scenario", columns="statistic", values="se", dropna=False).reindex(scen)
    if fig is None:
        fig = plt.figure(figsize=(15, 8.5))
    else:
        fig.clear()
    axes = fig.subplots(2, 3)
    colours = plt.get_cmap("tab10" if len(scen) <= 10 else "tab20")
    colour = {s: colours(i % colours.N) for i, s in enumerate(scen)}
    x = np.arange(len(scen))
    better = "higher is better" if info.higher_is_better else "lower is better"

    # (a) ladder curve
    ax = axes[0, 0]
    curve = _ladder_curve(cal.table, metric)
    for s in curve.index:
        ax.plot(curve.columns, curve.loc[s], marker="o", color=colour.get(s), label=s)
    ax.set_xlabel("ladder alpha (0 = mean baseline, 1 = truth)")
    ax.set_ylabel(f"{metric} (median; {better})")
    ax.set_title("(a) Ladder: does the score improve toward the truth?", fontsize=10)
    if len(curve):
        ax.legend(fontsize=7, ncol=2)

    def bars(ax, cols, names, title, ylabel, hline=0.0, ylim=None):
        width = 0.8 / len(cols)
        for k, (col, nm) in enumerate(zip(cols, names)):
            vals = mean[col].to_numpy(dtype=float) if col in mean else np.full(len(scen), np.nan)
            err = se[col].to_numpy(dtype=float) if col in se else None
            xs = x + (k - (len(cols) - 1) / 2) * width
            ax.bar(xs, np.nan_to_num(vals), width,
                   yerr=None if err is None else np.nan_to_num(err), label=nm, capsize=2)
            for xi, v in zip(xs, vals):
                if not np.isfinite(v):  # say it is undefined rather than draw a silent blank
                    ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=7, color="tab:red",
                            rotation=90)
        if hline is not None:
            ax.axhline(hline, color="black", lw=0.8)
        ax.set_xticks(x, scen, rotation=45, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        if len(cols) > 1:
            ax.legend(fontsize=7)

    # (b) DRF
    bars(axes[0, 1], ["drf_mean", "drf_control"], ["vs mean baseline", "vs control"],
         "(b) Dynamic range fraction of the technical duplicate", "DRF (1 = as good as best)", ylim=(-1.05, 1.05))
    # (c) null level
    bars(axes[0, 2], ["null_level"], ["null level"],
         "(c) Null level: mean baseline's credit without signal\n(read on noise_only; should be ~0)",
         "(mean - duplicate) / (best - duplicate)", hline=0.0)

    # (d) duplicate vs mean distributions
    ax = axes[1, 0]
    sub = cal.table[(cal.table["metric"] == metric)
                    & cal.table["predictor"].isin(["technical_duplicate", "mean"])]
    data, pos, cols = [], [], []
    for i, s in enumerate(scen):
        for k, (pred, c) in enumerate((("technical_duplicate", "tab:green"), ("mean", "tab:grey"))):
            v = sub.loc[(sub["scenario"] == s) & (sub["predictor"] == pred), "value"].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if v.size:
                data.append(v)
                pos.append(i + (k - 0.5) * 0.35)
                cols.append(c)
    if data:
        bp = ax.boxplot(data, positions=pos, widths=0.3, patch_artist=True, showfliers=False)
        for patch, c in zip(bp["boxes"], cols):
            patch.set_facecolor(c)
            patch.set_alpha(0.6)
    top = ax.get_ylim()[1]
    for i, s in enumerate(scen):
        a = mean.loc[s, "auroc"] if "auroc" in mean else np.nan
        if np.isfinite(a):
            ax.text(i, top, f"{a:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, scen, rotation=45, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(scen) - 0.4)
    ax.set_ylabel(f"{metric} per perturbation")
    ax.set_title("(d) Technical duplicate (green) vs mean baseline (grey); AUROC on top", fontsize=10)

    # (e) target gain vs specificity
    bars(axes[1, 1], ["specificity", "target_gain"], ["oracle - shuffled", "target-only - control"],
         "(e) Specificity vs reward for the target gene alone", "oriented score difference")

    # (f) systematic gain as B grows
    ax = axes[1, 2]
    bvals = stats.drop_duplicates("scenario").set_index("scenario")["B"].reindex(scen)
    sys_rows = [s for s in scen if np.isfinite(bvals.get(s, np.nan)) and s.startswith("systematic")]
    if not sys_rows:
        sys_rows = [s for s in scen if np.isfinite(bvals.get(s, np.nan))]
    if sys_rows and "systematic_gain" in mean and np.isfinite(
            mean.loc[sys_rows, "systematic_gain"].to_numpy(dtype=float)).any():
        order = sorted(sys_rows, key=lambda s: bvals[s])
        ax.errorbar(bvals[order].to_numpy(), mean.loc[order, "systematic_gain"].to_numpy(dtype=float),
                    yerr=np.nan_to_num(se.loc[order, "systematic_gain"].to_numpy(dtype=float)),
                    marker="o", capsize=3)
        ax.set_xlabel("systematic strength B")
    else:
        ax.text(0.5, 0.5, "undefined: no scenario states B,\nor the score of the oracle or of\n"
                "systematic-only is 0 or missing", ha="center", va="center", transform=ax.transAxes)
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(1, color="grey", lw=0.8, ls="--")
    ax.set_ylabel("systematic-only / oracle")
    ax.set_title("(f) Systematic gain: reward for the shared response alone", fontsize=10)

    verdict = summary.verdict(metric)
    grade = verdict.split(": ", 1)[1].split(" ", 1)[0]
    tone = {"GOOD": "tab:green", "MIXED": "tab:orange", "POOR": "tab:red"}.get(grade, "black")
    fig.suptitle(f"Calibration card: {metric}  ({better}; best = {info.best})", fontsize=13, y=0.995)
    fig.text(0.5, 0.945, verdict, ha="center", va="top", fontsize=10, color=tone, wrap=True)
    # why the "n/a" cells are undefined
    notes = summary.notes[summary.notes["metric"] == metric]
    bottom = 0.0
    if len(notes):
        lines = []
        for r, g in notes.groupby("reason", sort=False):
            labels = ", ".join(dict.fromkeys(g["statistic"]))
            lines.append(f"n/a ({labels}): {r}")
        fig.text(0.01, 0.005, "\n".join(lines), ha="left", va="bottom", fontsize=7, color="tab:red")
        bottom = min(0.03 + 0.018 * len(lines), 0.2)
    fig.tight_layout(rect=(0, bottom, 1, 0.93))
    return fig


def calibration_heatmap(summary, stat: str = "drf_mean", *, ax=None, annotate: bool = True, cmap: str = "RdBu",
                        colorbar: bool | None = None):
    """Heatmap of one calibration statistic, metrics x scenarios (paper figure 4).

    With ``ax`` given, the function draws into that axes only (image, ticks, labels,
    title; a colour bar only when ``colorbar=True``) and leaves the figure's layout alone,
    so that it can be one panel of a larger figure. Without ``ax`` it makes its own
    figure, adds a colour bar and tightens the layout. Undefined cells (NaN) are left
    blank and, when annotated, marked "n/a" (``summary.notes`` says why).

    Parameters
    ----------
    summary : CalibrationSummary or CalibrationResult
        A summary (or a result, which is summarised).
    stat : str, default "drf_mean"
        One of :data:`simpert.calibrate.STATISTICS`.
    ax : matplotlib Axes, optional
        Axes to draw into; default a new figure sized to the table.
    annotate : bool, default True
        Write each cell's value.
    cmap : str, default "RdBu"
        Diverging colour map, centred on the statistic's neutral value.
    colorbar : bool, optional
        Add a colour bar (stealing space from ``ax``). Default: True for a new figure,
        False when ``ax`` is given.

    Returns
    -------
    matplotlib.figure.Figure
        The figure that holds the axes.
    """
    from simpert.calibrate import STATISTICS, CalibrationResult, CalibrationSummary
    from matplotlib.axes import Axes

    check("summary", summary, Instance((CalibrationSummary, CalibrationResult),
                                       "a CalibrationSummary or CalibrationResult"))
    if isinstance(summary, CalibrationResult):
        summary = summary.summary()
    check("stat", stat, OneOf(STATISTICS))
    check("ax", ax, Instance((Axes, type(None)), "a matplotlib Axes or None"))
    check("colorbar", colorbar, Instance((bool, type(None)), "True, False or None"))
    own = ax is None
    if colorbar is None:
        colorbar = own
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm

    mat = summary.stat(stat)
    vals = mat.to_numpy(dtype=float)
    lo, hi, centre = _STAT_SCALE.get(stat, (None, None, 0.0))
    if lo is None:
        finite = vals[np.isfinite(vals)]
        span = float(np.max(np.abs(finite - centre))) if finite.size else 1.0
        span = span or 1.0
        lo, hi = centre - span, centre + span
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 + 0.75 * mat.shape[1], 1.2 + 0.38 * mat.shape[0]))
    else:
        fig = ax.figure
    im = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, norm=TwoSlopeNorm(centre, lo, hi), aspect="auto")
    ax.set_xticks(np.arange(mat.shape[1]), mat.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(np.arange(mat.shape[0]), mat.index, fontsize=8)
    if annotate and vals.size <= 2500:
        for (i, j), v in np.ndenumerate(vals):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(v - centre) > 0.6 * (hi - centre) else "black")
            else:
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=6, color="grey")
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.8, label=stat)
    ax.set_title(_STAT_TITLES.get(stat, stat), fontsize=10)
    if own:
        fig.tight_layout()
    return fig
