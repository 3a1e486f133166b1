"""Figure 10: is the 2026 challenge's score calibrated against the known truth?

cell-eval2's ``vcc2026`` suite scores each of its six metrics as ``s = (u - b) / (r - b)``:
``b`` is a mean-response baseline, ``r`` a split-half replicate (each perturbation's cells
and the control's split in two halves, one half scored against the other, 5 splits). On
simulated screens (500 genes, 40 CRISPRi perturbations of which 20 are scored, 10% of genes
changed per perturbation, a systematic response of strength 0.5) the figure scores predictors
of known quality: the technical duplicate (an independent draw of the whole experiment at full
size), the oracle (the true expected cells), the mean of the training perturbations (a
mean-response model), and three predictors that know nothing specific: control cells for
every perturbation (collapsed), control cells with the target gene set to its true value
(target-only) and control cells with the shared systematic response (systematic-only).

If ``s`` meant what it says, the duplicate would score about 1 and the mean baseline 0, and
predictors without specific knowledge would not score above 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from simpert import metrics as sm
from simpert import predict, sim

NAME = "fig10_vcc2026"
TITLE = "Figure 10. The 2026 challenge score against the known truth"
PREDICTORS = ("technical_duplicate", "oracle", "mean", "control", "target_only", "systematic_only")
BASE = dict(n_genes=500, n_perturbations=40, n_control_cells=400, cell_count_dispersion=0.0, p_effect=0.1,
            effect_size=1.0, systematic_strength=0.5, mean_shape=0.6, mean_scale=4.0)
_SHORT = {"pds_cosine": "PDS cosine", "expr_mse_unbiased_capped_norm": "expr MSE (capped, norm)",
          "de_wilcoxon_direction_fidelity_yield_raw": "DE direction fidelity",
          "de_wilcoxon_direction_reach_raw": "DE direction reach", "de_wilcoxon_sig_jaccard": "DE sig Jaccard",
          "de_wilcoxon_lfc_nmae": "DE LFC nMAE"}
_LABELS = {"technical_duplicate": "technical duplicate (full size)", "oracle": "oracle", "mean": "mean baseline",
           "control": "control (collapsed)", "target_only": "target only", "systematic_only": "systematic only"}


def compute(*, fast: bool, rng) -> dict[str, pd.DataFrame]:
    """Raw values u, anchors b and r, and scores s per cells setting, screen, predictor and metric."""
    from simpert.metrics._vcc2026 import VCC2026_METRICS, _score_one

    cells = [50, 150] if fast else [25, 50, 100, 200]
    n_rep = 2 if fast else 4
    rows, refused = [], []
    seeds = np.random.SeedSequence(rng).spawn(len(cells))
    for c, ss in zip(cells, seeds):
        for rep, child in enumerate(ss.spawn(n_rep)):
            s_sim, s_split, s_make = child.spawn(3)
            adata = sim.screen(rng=s_sim, cells_per_perturbation=float(c), **BASE)
            split = predict.split(adata, test_fraction=0.5, rng=s_split)
            keep = adata.obs["perturbation"].astype(str).isin(list(split.test) + ["control"]).to_numpy()
            real = adata[keep].copy()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    anchors = sm.vcc2026_anchors(real)
            except ValueError as err:
                refused.append({"cells": c, "replicate": rep, "reason": str(err)[:200]})
                anchors = None
            preds = predict.make(adata, split, list(PREDICTORS), rng=s_make, cells=True)
            for name in PREDICTORS:
                res = sm.vcc2026_metrics(preds[name].cells, real, options={"allow_fractional_counts": True})
                for m in VCC2026_METRICS:
                    u = float(res.aggregate[m])
                    b = float(anchors.loc[m, "baseline"]) if anchors is not None else np.nan
                    r = float(anchors.loc[m, "replicate"]) if anchors is not None else np.nan
                    s = _score_one(m, u, b, r) if anchors is not None else np.nan
                    rows.append({"cells": c, "replicate": rep, "predictor": name, "metric": m, "u": u, "b": b,
                                 "r": r, "s": s})
    return {"scores": pd.DataFrame(rows),
            "refused": pd.DataFrame(refused, columns=["cells", "replicate", "reason"])}


def plot(tables):
    """a: score of each predictor per metric (mean over screens and cells settings); b: the
    full-size duplicate's score against cells per perturbation; c: the replicate anchor's raw
    value as a fraction of the full repeat's."""
    import matplotlib.pyplot as plt

    t = tables["scores"]
    metrics = list(dict.fromkeys(t["metric"]))
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    ax = axes[0]
    mean = t.groupby(["predictor", "metric"])["s"].mean().unstack().reindex(index=list(PREDICTORS),
                                                                          columns=metrics)
    width = 0.8 / len(PREDICTORS)
    x = np.arange(len(metrics))
    for k, p in enumerate(PREDICTORS):
        ax.bar(x + (k - len(PREDICTORS) / 2 + 0.5) * width, mean.loc[p].to_numpy(dtype=float), width,
               label=_LABELS[p], color=f"C{k}")
    ax.axhline(0, color="k", lw=1)
    ax.axhline(1, color="k", lw=1, ls="--")
    ax.set_xticks(x, [_SHORT[m] for m in metrics], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("score s = (u - b) / (r - b)")
    ax.set_title("a  score of predictors of known quality (0: mean response, 1: half-size repeat)", fontsize=10,
                 loc="left")
    ax.legend(frameon=False, fontsize=8, ncol=2)
    ax = axes[1]
    dup = t[t["predictor"] == "technical_duplicate"].groupby(["metric", "cells"])["s"].mean().reset_index()
    for k, m in enumerate(metrics):
        d = dup[dup["metric"] == m]
        ax.plot(d["cells"], d["s"], "-o", color=f"C{k}", ms=4, label=_SHORT[m])
    ax.axhline(1, color="k", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("cells per perturbation")
    ax.set_ylabel("score of the full-size technical duplicate")
    ax.set_title("b  how far a full repeat exceeds the half-size anchor", fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=7)
    ax = axes[2]
    from simpert.metrics import registry

    ok = t.dropna(subset=["r"])
    d = ok[ok["predictor"] == "technical_duplicate"].groupby(["metric", "cells"])[["u", "r"]].mean().reset_index()
    for k, m in enumerate(metrics):
        dm = d[d["metric"] == m]
        hib = bool(registry[m].higher_is_better)
        frac = dm["r"] / dm["u"] if hib else dm["u"] / dm["r"]
        ax.plot(dm["cells"], frac, "-s", color=f"C{k}", ms=4, label=_SHORT[m])
    ax.axhline(1, color="k", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("cells per perturbation")
    ax.set_ylabel("half-size replicate r / full repeat u (errors: u / r)")
    ax.set_title("c  the anchor r as a fraction of a full repeat's value", fontsize=10, loc="left")
    n_screens = t.groupby(["cells", "replicate"]).ngroups
    fig.suptitle(f"{TITLE}  ({n_screens} simulated screens; {len(tables['refused'])} panels cell-eval2's anchor "
                 "refuses)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def caption(tables) -> str:
    """What the figure answers, with this run's numbers."""
    t = tables["scores"]
    mean = t.groupby(["predictor", "metric"])["s"].mean()
    metrics = list(dict.fromkeys(t["metric"]))

    def s(p, m):
        v = mean.get((p, m), np.nan)
        return "n/a" if not np.isfinite(v) else f"{v:.2f}"

    dup = t[t["predictor"] == "technical_duplicate"].groupby(["metric", "cells"])["s"].mean()
    cs = sorted(t["cells"].unique())
    blind = ("control", "target_only", "systematic_only")
    calibrated, gamed = [], []
    for m in metrics:
        worst = [p for p in blind if mean.get((p, m), np.nan) > 0.15]
        if worst:
            gamed.append((m, ", ".join(_LABELS[p] for p in worst)))
        if not worst and abs(mean.get(("technical_duplicate", m), np.nan) - 1) <= 0.15 \
                and abs(mean.get(("mean", m), np.nan)) <= 0.15:
            calibrated.append(m)
    lines = [
        "Scores s = (u - b)/(r - b) of cell-eval2's six vcc2026 metrics for predictors of known quality on "
        "simulated screens (b: mean-response baseline, r: 5-split half-size replicate, both from the scored "
        "data).",
        "Technical duplicate (a full-size repeat) / mean baseline / oracle: " + "; ".join(
            f"{_SHORT[m]} {s('technical_duplicate', m)} / {s('mean', m)} / {s('oracle', m)}" for m in metrics) + ".",
        "Predictors without specific knowledge (control, target only, systematic only): " + "; ".join(
            f"{_SHORT[m]} {s('control', m)}, {s('target_only', m)}, {s('systematic_only', m)}" for m in metrics)
        + ".",
        f"The full-size duplicate's score from {cs[0]} to {cs[-1]} cells per perturbation: " + "; ".join(
            f"{_SHORT[m]} {dup.get((m, cs[0]), np.nan):.2f} -> {dup.get((m, cs[-1]), np.nan):.2f}" for m in metrics)
        + ". A score above 1 for a repeat of the experiment is the half-size anchor understating a full-size "
        "replicate.",
        "Well calibrated here (duplicate within 0.15 of 1, mean baseline within 0.15 of 0, no predictor without "
        f"specific knowledge above 0.15): {', '.join(_SHORT[m] for m in calibrated) or 'none'}. Rewarding what "
        f"it should not (a predictor without specific knowledge above 0.15): "
        f"{', '.join(f'{_SHORT[m]} ({w})' for m, w in gamed) or 'none'}.",
        f"Panels whose anchor cell-eval2 refuses (a half with a non-positive summed corrected effect): "
        f"{len(tables['refused'])}.",
    ]
    return "\n".join(lines)
