"""Figure 4: calibration heatmap, every built-in metric x every scenario file.

Each scenario file in simulations/ is simulated several times; predictors of known quality
(oracle, technical duplicate, a ladder from the mean baseline to the truth, baselines and
reward hackers) are scored by every built-in metric, and ``simpert.calibrate`` summarises
how well each metric separates good predictions from bad ones:

- a: dynamic range fraction (Miller et al.) of the technical duplicate against the mean
  baseline: 1 = the duplicate gets the best possible score, 0 = no better than the mean
  baseline, < 0 = the mean baseline wins;
- b: Kendall tau between the ladder's alpha and the score (1 = moving the prediction
  towards the truth always improves the score);
- c: AUROC of the technical duplicate against the mean baseline across perturbations;
- d: what a baseline or a hack earns, as a fraction of the truth (red = a lot): the mean
  baseline on noise-only data (null level), the shared response alone as B grows
  (systematic gain) and the target gene alone (target gain / specificity).

Rows are ordered by an overall score (mean over the signal scenarios of DRF, tau and
2 AUROC - 1); the letter next to each name is the package's verdict (G good, M mixed,
P poor).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd

from simpert import calibrate as cb
from simpert import metrics as sm

NAME = "fig4_calibration_heatmap"
TITLE = "Figure 4. Calibration of every built-in metric across the simulated scenarios"

# preferred column order: the null scenario first, then difficulty, then network, then B
_ORDER = ("noise_only", "sparse_strong", "sparse_weak", "few_cells", "knockdown_escape", "var_network",
          "systematic_B0", "systematic_B0.5", "systematic_B1", "systematic_B2")
_NULL = "noise_only"
# cell-label accuracy trains a random forest per task (about 13 s per screen) and is NaN on
# most screens: left out of the figure
_SKIP = ("pereggrn_cell_label_accuracy",)
_DE_METRICS = ("overlap_at_N", "precision_at_N", "de_direction_match", "de_spearman_lfc_sig",
               "de_sig_genes_recall", "pr_auc", "roc_auc")
_MAIN_STATS = ("drf_mean", "tau", "auroc")
_GRADE_COLOUR = {"GOOD": "tab:green", "MIXED": "tab:orange", "POOR": "tab:red"}


def _metric_names() -> list[str]:
    """Built-in metrics with an orientation, profile / train ones first, then DE ones."""
    reg = sm.list_metrics()
    names = []
    for name, row in reg.iterrows():
        if row["higher_is_better"] is None or (isinstance(row["higher_is_better"], float)
                                               and np.isnan(row["higher_is_better"])):
            continue  # descriptors of the data score no prediction
        needs = str(row["needs"])
        if name in _SKIP or "cells" in needs or "de" in needs.split(","):
            continue
        names.append(name)
    names += [m for m in _DE_METRICS if m in reg.index]
    if "pearson_edistance" in reg.index:
        names.append("pearson_edistance")
    return names


def _scenarios(fast: bool) -> list:
    """The scenario files, in figure order; shrunk (fewer genes and perturbations) when fast."""
    names = cb.list_scenarios()
    ordered = [n for n in _ORDER if n in names] + sorted(n for n in names if n not in _ORDER)
    out = []
    for n in ordered:
        sc = cb.load_scenario(n)
        if fast:
            p = copy.deepcopy(sc.params_dict())
            if sc.kind == "screen":
                p.update(n_genes=150, n_perturbations=16)
            elif sc.kind == "var_network" and isinstance(p.get("network"), dict):
                p["network"] = dict(p["network"], n_genes=150, p=3.0 / 150)
                p["n_perturbed"] = min(int(p.get("n_perturbed", 16)), 16)
            sc = dataclasses.replace(sc, params=p)
        out.append(sc)
    return out


def compute(*, fast: bool, rng) -> dict[str, pd.DataFrame]:
    """Run the calibration and keep its summary tables."""
    names = _metric_names()
    if fast:  # CI: profile metrics and the headline DE metric only
        names = [m for m in names if m not in _DE_METRICS[1:] and m != "pearson_edistance"]
    scenarios = _scenarios(fast)
    (seed,) = np.random.SeedSequence(rng).spawn(1)
    res = cb.calibrate(names, scenarios, n_replicates=1 if fast else 6, rng=seed, executor="serial")
    summ = res.summary()
    reg = sm.list_metrics()
    info = pd.DataFrame(
        [{"metric": m, "higher_is_better": bool(i.higher_is_better),
          "best": np.nan if i.best is None else float(i.best),
          "source": str(reg.loc[m, "source"]) if m in reg.index else "",
          "verdict": summ.verdict(m)} for m, i in summ.info.items()])
    errors = res.errors.astype(str) if len(res.errors) else pd.DataFrame({"metric": pd.Series(dtype=str),
                                                                        "scenario": pd.Series(dtype=str),
                                                                        "message": pd.Series(dtype=str)})
    meta = pd.DataFrame({"key": ["n_replicates", "wall_time", "n_genes", "scenario_order"],
                         "value": [str(res.n_replicates), f"{res.wall_time:.1f}",
                                   "150 (shrunk)" if fast else "as in the files",
                                   ",".join(summ.scenarios)]})
    long = summ.long.copy()
    long["B"] = long["B"].astype(float)
    return {"summary": long, "per_replicate": summ.per_replicate, "info": info, "errors": errors, "meta": meta}


def _summary(tables):
    """Rebuild a CalibrationSummary from the cached tables."""
    long, info = tables["summary"], tables["info"]
    meta = tables["meta"].set_index("key")["value"]
    scen = [s for s in str(meta["scenario_order"]).split(",") if s]
    minfo = {r.metric: cb.MetricInfo(r.metric, bool(r.higher_is_better), None if pd.isna(r.best) else float(r.best))
             for r in info.itertuples()}
    return cb.CalibrationSummary(long, tables["per_replicate"], list(minfo), scen, minfo, tables["errors"])


def _overall(summ) -> pd.Series:
    """Mean over signal scenarios of DRF, tau and 2 AUROC - 1 (NaN-ignoring), per metric."""
    sig = [s for s in summ.scenarios if s != _NULL]
    parts = [summ.stat("drf_mean")[sig], summ.stat("tau")[sig], 2 * summ.stat("auroc")[sig] - 1]
    stacked = np.stack([p.to_numpy(dtype=float) for p in parts], axis=1)  # metric x stat x scenario
    flat = stacked.reshape(stacked.shape[0], -1)
    ok = np.isfinite(flat)
    with np.errstate(all="ignore"):
        score = np.where(ok, flat, 0.0).sum(axis=1) / ok.sum(axis=1)
    return pd.Series(score, index=summ.metrics).sort_values(ascending=False, na_position="last")


def _hack_table(summ) -> pd.DataFrame:
    """Panel d: null level on noise-only data, systematic gain per B, target gain / specificity."""
    out = pd.DataFrame(index=summ.metrics)
    if _NULL in summ.scenarios:
        out["null level\n(noise_only)"] = summ.stat("null_level")[_NULL]
    sysg = summ.stat("systematic_gain")
    bs = summ.long.drop_duplicates("scenario").set_index("scenario")["B"]
    sys_cols = sorted((s for s in summ.scenarios if s.startswith("systematic") and np.isfinite(bs.get(s, np.nan))),
                      key=lambda s: bs[s])
    for s in sys_cols:
        out[f"systematic gain\nB = {bs[s]:g}"] = sysg[s]
    sig = [s for s in summ.scenarios if s != _NULL]
    with np.errstate(all="ignore"):
        ratio = summ.stat("target_gain")[sig] / summ.stat("specificity")[sig]
    ratio = ratio.where(np.isfinite(ratio))
    out["target gain /\nspecificity"] = ratio.median(axis=1, skipna=True)
    return out


def _heat(ax, vals, *, cmap, lo, centre, hi):
    """Annotated heatmap; NaN cells say n/a."""
    from matplotlib.colors import TwoSlopeNorm

    im = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, norm=TwoSlopeNorm(centre, lo, hi), aspect="auto",
                   interpolation="nearest")
    span = max(hi - centre, centre - lo)
    for (i, j), v in np.ndenumerate(vals):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5.5,
                    color="white" if abs(v - centre) > 0.6 * span else "black")
        else:
            ax.text(j, i, "n/a", ha="center", va="center", fontsize=5.5, color="0.45")
    ax.set_facecolor("0.92")
    return im


def plot(tables):
    """Bar of the overall score, three heatmaps (DRF, tau, AUROC) and the baseline / hack panel."""
    import matplotlib.pyplot as plt

    base = _summary(tables)
    overall = _overall(base)
    order = list(overall.index)
    summ = cb.CalibrationSummary(base.long, base.per_replicate, order, base.scenarios,
                                 {m: base.info[m] for m in order}, base.errors)
    info = tables["info"].set_index("metric")
    grade = {m: info.loc[m, "verdict"].split(": ", 1)[1].split(" ", 1)[0] for m in order}
    n_rows, n_cols = len(order), len(summ.scenarios)
    hack = _hack_table(summ).reindex(order)
    height = 3.4 + 0.25 * n_rows
    fig = plt.figure(figsize=(24, height))
    gs = fig.add_gridspec(2, 5, width_ratios=[2.2, n_cols, n_cols, n_cols, hack.shape[1] + 0.5],
                          height_ratios=[0.25 * n_rows, 0.55], wspace=0.05, hspace=0.04,
                          left=0.13, right=0.995, top=1 - 1.75 / height, bottom=0.25 / height)
    axes = [fig.add_subplot(gs[0, i]) for i in range(5)]
    y = np.arange(n_rows)
    # overall score bars, with the metric names and the package's verdict
    ax = axes[0]
    vals = overall.to_numpy(dtype=float)
    ax.barh(y, np.nan_to_num(vals), color=[plt.cm.RdBu(0.5 + 0.5 * np.clip(v, -1, 1)) if np.isfinite(v) else "0.8"
                                          for v in vals], edgecolor="0.3", lw=0.4)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlim(min(-0.3, np.nanmin(vals) - 0.05), 1.0)
    src = info["source"].to_dict()
    ax.set_yticks(y, [f"{m} [{src.get(m, '')}]  {grade[m][:1]}" for m in order], fontsize=7.5)
    for lab, m in zip(ax.get_yticklabels(), order):
        lab.set_color(_GRADE_COLOUR.get(grade[m], "black"))
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("overall score\n(mean of a-c over\nthe signal scenarios)", fontsize=8)
    ax.grid(axis="x", color="0.85", lw=0.5)
    scale = {"drf_mean": ("RdBu", -1, 0, 1), "tau": ("RdBu", -1, 0, 1), "auroc": ("RdBu", 0, 0.5, 1)}
    titles = {"drf_mean": "a  DRF: technical duplicate vs mean baseline\n1 = best score, 0 = no better than the "
                          "mean baseline, < 0 = mean baseline wins",
              "tau": "b  Kendall tau along the ladder (mean baseline -> truth)\n1 = every step towards the "
                     "truth improves the score",
              "auroc": "c  AUROC: technical duplicate beats mean baseline\nper perturbation; 0.5 = chance, "
                       "1 = always"}
    cbar_labels = {"drf_mean": "dynamic range fraction", "tau": "Kendall tau", "auroc": "AUROC"}
    for k, (ax, stat) in enumerate(zip(axes[1:4], _MAIN_STATS)):
        cmap, lo, centre, hi = scale[stat]
        im = _heat(ax, summ.stat(stat).to_numpy(dtype=float), cmap=cmap, lo=lo, centre=centre, hi=hi)
        ax.set_xticks(np.arange(n_cols), summ.scenarios, rotation=45, ha="left", fontsize=7.5)
        ax.xaxis.tick_top()
        ax.set_yticks(y, [""] * n_rows)
        ax.set_title(titles[stat], fontsize=9, pad=8, loc="left")
        if _NULL in summ.scenarios:
            ax.axvline(summ.scenarios.index(_NULL) + 0.5, color="k", lw=1.6)
        slot = fig.add_subplot(gs[1, k + 1])
        slot.set_axis_off()
        cax = slot.inset_axes([0.2, 0.35, 0.6, 0.3])
        fig.colorbar(im, cax=cax, orientation="horizontal").set_label(cbar_labels[stat], fontsize=7)
        cax.tick_params(labelsize=6)
    ax = axes[4]
    im = _heat(ax, np.clip(hack.to_numpy(dtype=float), -9, 9), cmap="RdBu_r", lo=-1, centre=0, hi=1)
    ax.set_xticks(np.arange(hack.shape[1]), hack.columns, rotation=45, ha="left", fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks(y, [""] * n_rows)
    ax.set_title("d  what a baseline or a hack earns\n(as a fraction of the truth; red = a lot)", fontsize=9,
                 pad=8, loc="left")
    slot = fig.add_subplot(gs[1, 4])
    slot.set_axis_off()
    cax = slot.inset_axes([0.1, 0.35, 0.8, 0.3])
    fig.colorbar(im, cax=cax, orientation="horizontal").set_label("earned / truth's", fontsize=7)
    cax.tick_params(labelsize=6)
    fig.add_subplot(gs[1, 0]).set_axis_off()
    meta = tables["meta"].set_index("key")["value"]
    fig.suptitle(f"{TITLE}: {meta['n_replicates']} simulated screen(s) per scenario. Left of the black line: "
                 "noise-only data (no effects at all); letters G / M / P: the package's verdict "
                 "(good / mixed / poor)", fontsize=10.5, y=1 - 0.15 / height)
    return fig


def caption(tables) -> str:
    """Which metrics calibrate well and badly in this run, with key numbers."""
    summ = _summary(tables)
    overall = _overall(summ)
    info = tables["info"].set_index("metric")
    grades = {m: info.loc[m, "verdict"].split(": ", 1)[1].split(" ", 1)[0] for m in summ.metrics}
    sig = [s for s in summ.scenarios if s != _NULL]
    drf = summ.stat("drf_mean")[sig]
    auc = summ.stat("auroc")[sig]
    tau = summ.stat("tau")[sig]
    best = [m for m in overall.index if np.isfinite(overall[m])][:4]
    worst = [m for m in overall.index if np.isfinite(overall[m])][-4:][::-1]

    def desc(m):
        return (f"{m} (overall {overall[m]:.2f}; median DRF {np.nanmedian(drf.loc[m]):.2f}, "
                f"tau {np.nanmedian(tau.loc[m]):.2f}, AUROC {np.nanmedian(auc.loc[m]):.2f})")

    neg = [m for m in summ.metrics if np.isfinite(drf.loc[m]).any() and (drf.loc[m] < 0).mean() > 0.5]
    nan_drf = [m for m in summ.metrics if not np.isfinite(drf.loc[m]).any()]
    counts = pd.Series(grades).value_counts()
    hack = _hack_table(summ)
    parts = [
        f"{len(summ.metrics)} built-in metrics x {len(summ.scenarios)} scenario files, "
        f"{tables['meta'].set_index('key').loc['n_replicates', 'value']} simulated screens each "
        f"(genes: {tables['meta'].set_index('key').loc['n_genes', 'value']}). "
        f"Verdicts: {counts.get('GOOD', 0)} good, {counts.get('MIXED', 0)} mixed, {counts.get('POOR', 0)} poor.",
        "Best calibrated: " + "; ".join(desc(m) for m in best) + ".",
        "Worst calibrated: " + "; ".join(desc(m) for m in worst) + ".",
    ]
    if neg:
        parts.append(f"The mean baseline beats the technical duplicate (DRF < 0) in most signal scenarios under "
                     f"{len(neg)} metrics, among them {', '.join(neg[:6])}: these metrics reward averaging over "
                     "perturbations more than measuring the perturbation itself.")
    if nan_drf:
        parts.append(f"No DRF for {', '.join(nan_drf)}: the mean baseline's score is undefined there "
                     "(a centred prediction with zero variance has no correlation).")
    col = "null level\n(noise_only)"
    if col in hack:
        high = hack[col].dropna().sort_values(ascending=False)
        text = ("Null level (noise-only data, no effects at all): the credit the mean baseline gets beyond an "
                "independent replicate, as a fraction of the room up to the best score (0: none, 1: as if it "
                f"were perfect). It is >= 0.5 under {int((high >= 0.5).sum())} of {high.size} metrics (highest: "
                + ", ".join(f"{m} {v:.2f}" for m, v in high.head(3).items()) + ")")
        if "pearson_delta" in high.index:
            text += (f"; pearson_delta's {high['pearson_delta']:.2f} is the shared-control-noise correlation of "
                     "figure 1")
        low = high.sort_values().head(3)
        text += "; lowest: " + ", ".join(f"{m} {v:.2f}" for m, v in low.items())
        parts.append(text + ".")
    sat = [m for m in summ.metrics if np.isfinite(tau.loc[m]).any()
           and abs(np.nanmedian(tau.loc[m]) - np.sqrt(0.4)) < 0.01]
    if sat:
        parts.append(f"A ladder tau of 0.63 ({', '.join(sat)}) is the ceiling of a metric that saturates: every "
                     "rung above the mean baseline already gets the best score, so the rungs tie.")
    tcol = "target gain /\nspecificity"
    if tcol in hack:
        th = hack[tcol].dropna().sort_values(ascending=False)
        parts.append("Moving only the target gene earns the most under "
                     + ", ".join(f"{m} ({v:.2f} of the oracle-vs-shuffled gap)" for m, v in th.head(3).items()) + ".")
    errors = tables["errors"]
    if len(errors):
        parts.append(f"{len(errors)} (metric, scenario) cells failed and are blank: "
                     + "; ".join(f"{r.metric} on {r.scenario}" for r in errors.head(5).itertuples()) + ".")
    return " ".join(parts)
