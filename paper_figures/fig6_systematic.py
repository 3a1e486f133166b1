"""Figure 6: systematic variation and the reference point of delta metrics.

Screens are simulated with a shared (systematic) response of strength B in 0, 0.5, 1, 2
that every perturbed cell carries, as in Mejia et al.'s control bias; the screens of one
replicate share every other random draw (paired), so only B changes along a line.
Predictions are scored with the Pearson correlation of deltas against two reference
points: the control mean (cell-eval's ``pearson_delta``) and the perturbed centroid of the
training perturbations (Systema's centered Pearson). ``systematic_only`` predicts the
control plus the true shared response for every perturbation: it knows nothing
perturbation-specific. a/b: scores vs B for both references; c: the systematic-only and
technical-duplicate scores as fractions of the oracle's; d: Systema's degree of systematic
variation of the observed data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import simpert as sp

__all__ = ["NAME", "TITLE", "compute", "plot", "caption"]

NAME = "fig6_systematic"
TITLE = "Figure 6. Systematic variation: a control reference rewards a perturbation-blind prediction"
B_VALUES = (0.0, 0.5, 1.0, 2.0)
PREDICTORS = ("oracle", "technical_duplicate", "systematic_only", "mean", "shuffled")
LABELS = {
    "oracle": "oracle (true profile)",
    "technical_duplicate": "technical duplicate",
    "systematic_only": "systematic-only (control + shared shift)",
    "mean": "mean baseline",
    "shuffled": "shuffled oracle (wrong labels)",
}
COLORS = {"oracle": "k", "technical_duplicate": "C2", "systematic_only": "C3", "mean": "C1", "shuffled": "0.6"}
REFS = {"control": "control mean", "centroid": "perturbed centroid"}


def _one(rep: int, ss: np.random.SeedSequence, fast: bool) -> pd.DataFrame:
    s_sim, s_split, s_pred = ss.spawn(3)
    rows = []
    for B in B_VALUES:
        # the same seeds for every B: paired screens that differ only in the shared response
        adata = sp.sim.screen(
            n_genes=500 if fast else 1000, n_perturbations=30 if fast else 60, n_control_cells=500,
            cells_per_perturbation=50, systematic_strength=B, output="pseudobulk",
            rng=np.random.SeedSequence(s_sim.entropy, spawn_key=s_sim.spawn_key))
        split = sp.predict.split(adata, test_fraction=0.5,
                                 rng=np.random.SeedSequence(s_split.entropy, spawn_key=s_split.spawn_key))
        preds = sp.predict.make(adata, split, list(PREDICTORS),
                                rng=np.random.SeedSequence(s_pred.entropy, spawn_key=s_pred.spawn_key))
        for ref in REFS:
            sc = sp.metrics.score(preds, adata, split, metrics=["pearson_delta"], reference=ref, target="include")
            m = sc.groupby("predictor")["value"].mean()
            for p in PREDICTORS:
                rows.append({"replicate": rep, "B": B, "reference": ref, "predictor": p, "value": float(m[p]),
                             "n_test": len(split.test)})
        # Systema's descriptor with its own (centroid) definition
        sv = sp.metrics.score(preds["oracle"], adata, split, metrics=["systematic_variation"])
        rows.append({"replicate": rep, "B": B, "reference": "centroid", "predictor": "data",
                     "value": float(sv["value"].mean()), "n_test": len(split.test)})
    return pd.DataFrame(rows)


def compute(*, fast: bool, rng) -> dict[str, pd.DataFrame]:
    """Mean score over test perturbations per (replicate, B, reference, predictor)."""
    n_rep = 2 if fast else 6
    seeds = np.random.SeedSequence(rng).spawn(n_rep)
    return {"scores": pd.concat([_one(r, seeds[r], fast) for r in range(n_rep)], ignore_index=True)}


def _summary(scores: pd.DataFrame) -> pd.DataFrame:
    g = scores.groupby(["B", "reference", "predictor"])["value"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"] / np.sqrt(out["count"])
    return out


def _ratios(scores: pd.DataFrame) -> pd.DataFrame:
    wide = scores[scores["predictor"] != "data"].pivot_table(
        index=["replicate", "B", "reference"], columns="predictor", values="value")
    out = pd.DataFrame({p: wide[p] / wide["oracle"] for p in ("systematic_only", "technical_duplicate")})
    g = out.reset_index().groupby(["B", "reference"])
    m, s, n = g.mean(), g.std(), g.size()
    res = m[["systematic_only", "technical_duplicate"]].copy()
    for p in ("systematic_only", "technical_duplicate"):
        res[p + "_se"] = s[p].to_numpy() / np.sqrt(n.to_numpy())
    return res.reset_index()


def plot(tables):
    """Four panels: scores vs B for both references, fractions of the oracle, systematic variation."""
    import matplotlib.pyplot as plt

    scores = tables["scores"]
    summ = _summary(scores)
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.6))
    titles = {"control": "a  Deltas vs control: the blind prediction\n    climbs with B and passes the duplicate",
              "centroid": "b  Deltas vs perturbed centroid (Systema):\n    only perturbation-specific signal counts"}
    for ax, ref in zip(axes[:2], REFS):
        for p in PREDICTORS:
            d = summ[(summ["reference"] == ref) & (summ["predictor"] == p)].sort_values("B")
            if d["mean"].notna().sum() == 0:
                continue
            ax.errorbar(d["B"], d["mean"], yerr=2 * d["se"].fillna(0), marker="o", ms=4, capsize=2,
                        color=COLORS[p], label=LABELS[p], ls="-" if p != "shuffled" else "--")
        ax.set_xlabel("systematic strength B (shared response, log2 SD 0.5 x B)")
        ax.set_ylabel(f"Pearson r of deltas vs {REFS[ref]}")
        ax.set_ylim(-0.1, 1.02)
        ax.set_xticks(B_VALUES)
        ax.axhline(0, color="0.8", lw=0.8)
        ax.set_title(titles[ref], fontsize=10, loc="left")
    axes[0].legend(frameon=False, fontsize=7.5, loc="lower right")
    axes[1].text(0.02, 0.97, "mean baseline = the centroid itself:\nzero delta, correlation undefined",
                 transform=axes[1].transAxes, fontsize=7.5, va="top", color="C1")
    ax = axes[2]
    rat = _ratios(scores)
    for ref, ls in (("control", "-"), ("centroid", "--")):
        d = rat[rat["reference"] == ref].sort_values("B")
        ax.errorbar(d["B"], d["systematic_only"], yerr=2 * d["systematic_only_se"].fillna(0), color="C3", ls=ls,
                    marker="o", ms=4, capsize=2, label=f"systematic-only, vs {REFS[ref]}")
        ax.errorbar(d["B"], d["technical_duplicate"], yerr=2 * d["technical_duplicate_se"].fillna(0), color="C2",
                    ls=ls, marker="s", ms=4, capsize=2, label=f"technical duplicate, vs {REFS[ref]}")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xticks(B_VALUES)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("systematic strength B")
    ax.set_ylabel("score / oracle's score (Pearson of deltas)")
    ax.set_title("c  Fraction of the oracle's score", fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=7, loc="center right", bbox_to_anchor=(1.0, 0.42))
    ax = axes[3]
    d = summ[summ["predictor"] == "data"].sort_values("B")
    ax.errorbar(d["B"], d["mean"], yerr=2 * d["se"].fillna(0), marker="o", color="C4", capsize=2)
    ax.set_xticks(B_VALUES)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("systematic strength B")
    ax.set_ylabel("mean cos(r_p - r_0, centroid - r_0)")
    ax.set_title("d  Degree of systematic variation (Systema)\n    is above 0 even at B = 0", fontsize=10, loc="left")
    b0 = d[d["B"] == 0]["mean"]
    if len(b0):
        ax.annotate("B = 0: shared control noise and\naveraged specific effects", (0, float(b0.iloc[0])),
                    xytext=(0.4, 0.08), fontsize=7.5, arrowprops=dict(arrowstyle="->", color="0.4"))
    fig.tight_layout()
    return fig


def caption(tables) -> str:
    """Key numbers of the run."""
    scores = tables["scores"]
    summ = _summary(scores).set_index(["B", "reference", "predictor"])["mean"]
    rat = _ratios(scores).set_index(["B", "reference"])
    n_rep = scores["replicate"].nunique()
    n_test = int(scores["n_test"].iloc[0])
    bmax = max(B_VALUES)
    cross = [B for B in B_VALUES
             if summ[(B, "control", "systematic_only")] > summ[(B, "control", "technical_duplicate")]]
    cen = rat.xs("centroid", level="reference")["systematic_only"]
    lo_c, hi_c = float(cen.min()), float(cen.max())
    cross_txt = (f"it scores above the technical duplicate from B = {min(cross):g} on"
                 if cross else "it stays below the technical duplicate at every B")
    return (
        "Pseudobulk screens with a shared response of strength B carried by every perturbed cell; paired "
        f"screens (same seeds) for each B, {n_rep} replicate screens with {n_test} held-out perturbations each; "
        "points are means with 2 SE bars. Against the control mean (cell-eval's pearson_delta), the "
        "perturbation-blind systematic-only prediction (undefined at B = 0, where its delta is zero) reaches "
        f"{rat.loc[(0.5, 'control'), 'systematic_only']:.0%} of the oracle's score at B = 0.5 and "
        f"{rat.loc[(bmax, 'control'), 'systematic_only']:.0%} at B = {bmax:g} (r = "
        f"{summ[(bmax, 'control', 'systematic_only')]:.3f} vs oracle {summ[(bmax, 'control', 'oracle')]:.3f}); "
        f"{cross_txt}, and the mean baseline follows it (r = {summ[(bmax, 'control', 'mean')]:.3f} at B = {bmax:g}). "
        "Against the perturbed centroid of the training perturbations (Systema's centered Pearson) the same "
        f"prediction stays at {lo_c:.0%}-{hi_c:.0%} of the oracle at every B, while the oracle "
        f"keeps r = {summ[(bmax, 'centroid', 'oracle')]:.3f} and the technical duplicate "
        f"{summ[(bmax, 'centroid', 'technical_duplicate')]:.3f} at B = {bmax:g}. Systema's degree of systematic "
        f"variation rises from {summ[(0.0, 'centroid', 'data')]:.2f} (B = 0) to {summ[(bmax, 'centroid', 'data')]:.2f} "
        f"(B = {bmax:g}); its floor at B = 0 comes from the control noise shared by every observed delta and by the "
        "centroid's delta, and from the averaged specific effects."
    )
