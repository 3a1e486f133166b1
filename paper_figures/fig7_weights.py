"""Figure 7: weighted metrics and the source of their weights.

Mejia et al.'s weighted MSE and weighted R^2 of deltas weight gene g by the min-max scaled
squared t-statistic of a perturbation against the other perturbed cells. Where do the
weights of a held-out perturbation come from? Five sources on the same screens:

- train only (simpert's default): each training perturbation's weights, averaged into one
  vector; no held-out data enters the metric;
- all perturbations (leaky, as published): each test perturbation's own weights, from the
  very cells it is scored against;
- external replicate: the same per-perturbation weights, from an independent replicate
  screen (a redraw of the screen: same truth, new cells), so no cell is used twice;
- external expression: a population-level vector (min-max scaled squared control mean);
- none: uniform weights (plain MSE and R^2).

a: dynamic range fraction (Miller et al.) of the technical duplicate against the mean
baseline; b: what the reward hacker target-only earns; c: the winner's curse of leaky
weights: the oracle's error with leaky vs independent per-perturbation weights; d: which
scale of the true delta each weight source prefers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import simpert as sp
from simpert._profiles import expression
from simpert.predict import Prediction

__all__ = ["NAME", "TITLE", "compute", "plot", "caption"]

NAME = "fig7_weights"
TITLE = "Figure 7. Weighted metrics: per-perturbation weights carry the signal, and leaky ones add a winner's curse"
SOURCES = {
    "train": "train only",
    "all": "all (leaky)",
    "rep_weights": "external\nreplicate",
    "expr_weights": "external\nexpression",
    "uniform": "none",
}
SOURCE_COLORS = {"train": "C0", "all": "C3", "rep_weights": "C2", "expr_weights": "C4", "uniform": "0.5"}
METRICS = {"wmse": "weighted MSE", "weighted_r2_delta": "weighted R2 of deltas"}
PREDICTORS = ("oracle", "technical_duplicate", "target_only", "mean", "control")
SCALES = (0.5, 0.75, 1.0, 1.25, 1.5)
SCREEN = dict(mean_shape=1.0, mean_scale=5.0, n_control_cells=300, cells_per_perturbation=25)


def _scaled(oracle: Prediction, k: float) -> Prediction:
    c = oracle.control.to_numpy(float)
    prof = c[None, :] + k * (oracle.profiles.to_numpy(float) - c[None, :])
    return Prediction(f"scale={k:g}", pd.DataFrame(prof, index=oracle.profiles.index, columns=oracle.profiles.columns),
                      oracle.control)


def _replicate_weights(adata, split, ss) -> np.ndarray:
    """Per-test-perturbation weights from an independent redraw, computed as score(weights='all') does."""
    dup = sp.sim.redraw(adata, rng=ss)
    labels = dup.obs["perturbation"].astype(str).to_numpy()
    keep = labels != split.control
    X = expression(dup, np.flatnonzero(keep))
    return sp.metrics.mejia_weights(sp.metrics.t_statistics(X, labels[keep], list(split.test)))


def _one(rep: int, ss: np.random.SeedSequence, fast: bool) -> pd.DataFrame:
    s_sim, s_split, s_pred, s_rep = ss.spawn(4)
    adata = sp.sim.screen(n_genes=400 if fast else 800, n_perturbations=30 if fast else 40, rng=s_sim, **SCREEN)
    split = sp.predict.split(adata, test_fraction=0.5, rng=s_split)
    preds = sp.predict.make(adata, split, list(PREDICTORS), rng=s_pred)
    allp = list(preds.values()) + [_scaled(preds["oracle"], k) for k in SCALES if k != 1.0]
    ctrl = np.asarray(expression(adata, np.flatnonzero(
        adata.obs["perturbation"].astype(str).to_numpy() == split.control)).mean(axis=0)).ravel()
    weights = {"train": "train", "all": "all", "rep_weights": _replicate_weights(adata, split, s_rep),
               "expr_weights": sp.metrics.mejia_weights(ctrl[None, :])[0], "uniform": np.ones(adata.n_vars)}
    frames = []
    for name, w in weights.items():
        sc = sp.metrics.score(allp, adata, split, metrics=list(METRICS), weights=w)
        sc["source"] = name
        frames.append(sc)
    out = pd.concat(frames, ignore_index=True)
    out["replicate"] = rep
    return out


def compute(*, fast: bool, rng) -> dict[str, pd.DataFrame]:
    """Per-perturbation scores of every predictor under every weight source."""
    n_rep = 1 if fast else 6
    seeds = np.random.SeedSequence(rng).spawn(n_rep)
    return {"scores": pd.concat([_one(r, seeds[r], fast) for r in range(n_rep)], ignore_index=True)}


# ---------------------------------------------------------------------------------------- tables
def _wide(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.pivot_table(index=["source", "metric", "replicate", "perturbation"], columns="predictor",
                              values="value")


def _drf(scores: pd.DataFrame) -> pd.DataFrame:
    """Median over perturbations of Miller et al.'s DRF against the mean baseline (weighted MSE).

    The weighted R^2 of deltas has the same DRF by construction: R^2 = 1 - wSSE / wSST with a
    denominator that does not depend on the prediction, and both reference points cancel in
    the residual (the caption reports the largest difference found).
    """
    w = _wide(scores).reset_index()
    rows = []
    for metric in METRICS:
        d = w[w["metric"] == metric]
        hib, best = sp.metrics.get(metric).higher_is_better, sp.metrics.get(metric).best
        for pos in ("technical_duplicate", "oracle"):
            p, n = d[pos], d["mean"]
            drf = np.clip(((p - n) / (best - n)) if hib else ((n - p) / n), -1, 1)
            tmp = d[["source"]].copy()
            tmp["drf"], tmp["positive"], tmp["metric"] = drf.to_numpy(), pos, metric
            rows.append(tmp)
    out = pd.concat(rows)
    return out.groupby(["source", "metric", "positive"])["drf"].median().reset_index()


def _gain(scores: pd.DataFrame) -> pd.DataFrame:
    """Each predictor's gain over control as a fraction of the oracle's (means over perturbations)."""
    m = scores.groupby(["source", "metric", "predictor"])["value"].mean().unstack("predictor").reset_index()
    sign = m["metric"].map({k: 1.0 if sp.metrics.get(k).higher_is_better else -1.0 for k in METRICS})
    for p in ("technical_duplicate", "mean", "target_only"):
        m[p + "_fraction"] = (sign * (m[p] - m["control"])) / (sign * (m["oracle"] - m["control"]))
    return m


def _scale_curve(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean score of the scaled oracle per scale, and the best scale from the exact quadratic fit."""
    s = scores[scores["predictor"].str.startswith("scale=") | (scores["predictor"] == "oracle")].copy()
    s["k"] = np.where(s["predictor"] == "oracle", 1.0,
                      pd.to_numeric(s["predictor"].str.replace("scale=", "", regex=False), errors="coerce"))
    return s.groupby(["source", "metric", "k"])["value"].mean().reset_index()


def _best_scale(curve: pd.DataFrame) -> pd.DataFrame:
    """wMSE is exactly quadratic in the scale k; the vertex of the fitted parabola is the preferred k."""
    rows = []
    for (src, metric), d in curve.groupby(["source", "metric"]):
        a, b, _ = np.polyfit(d["k"], d["value"], 2)
        rows.append({"source": src, "metric": metric, "k_best": -b / (2 * a)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- plot
def plot(tables):
    """Four panels: DRF by weight source, reward-hacker gain, winner's curse, preferred scale."""
    import matplotlib.pyplot as plt

    scores = tables["scores"]
    fig, axes = plt.subplots(1, 4, figsize=(21, 5.0), gridspec_kw={"width_ratios": [1.25, 1.25, 1.0, 1.0]})
    srcs = list(SOURCES)
    x = np.arange(len(srcs))
    width = 0.38
    # a
    ax = axes[0]
    drf = _drf(scores).set_index(["source", "metric", "positive"])["drf"]
    for j, (pos, label, col) in enumerate((("technical_duplicate", "technical duplicate", "C2"),
                                           ("oracle", "oracle", "k"))):
        vals = [drf[(s, "wmse", pos)] for s in srcs]
        ax.bar(x + (j - 0.5) * width, vals, width, color=col, label=label)
        for xi, v in zip(x, vals):
            ax.text(xi + (j - 0.5) * width, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    ax.set_xticks(x, [SOURCES[s] for s in srcs], fontsize=8)
    ax.set_ylim(min(0, float(np.nanmin(drf.to_numpy())) - 0.05), 1.08)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("dynamic range fraction vs the mean baseline\n(weighted MSE = weighted R2; median over perturbations)")
    ax.set_title("a  Per-perturbation weights make the positive controls\n    stand out; train-only weights barely do",
                 fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    # b
    ax = axes[1]
    gn = _gain(scores)
    gn = gn[gn["metric"] == "wmse"].set_index("source")
    width3 = 0.27
    for j, (p, label, col) in enumerate((("technical_duplicate", "technical duplicate", "C2"),
                                         ("mean", "mean baseline", "C1"), ("target_only", "target-only", "C3"))):
        vals = [100 * gn.loc[s, p + "_fraction"] for s in srcs]
        ax.bar(x + (j - 1) * width3, vals, width3, color=col, label=label)
        for xi, v in zip(x, vals):
            ax.text(xi + (j - 1) * width3, v + (1 if v >= 0 else -4), f"{v:.0f}", ha="center", fontsize=6.5)
    ax.axhline(0, color="k", lw=0.8)
    ax.axhline(100, color="k", lw=0.8, ls=":")
    ax.set_xticks(x, [SOURCES[s] for s in srcs], fontsize=8)
    ax.set_ylabel("gain over the control baseline\n(% of the oracle's gain, weighted MSE)")
    ax.set_title("b  Per-perturbation weights bring the noisy duplicate\n    near the truth; the reward hacker's share barely moves",
                 fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    # c
    ax = axes[2]
    w = _wide(scores)["oracle"].unstack("source").reset_index()
    w = w[w["metric"] == "wmse"]
    xs, ys = w["rep_weights"].to_numpy(float), w["all"].to_numpy(float)
    ax.scatter(xs, ys, s=12, color="C3", alpha=0.8)
    lo, hi = np.nanmin(np.r_[xs, ys]) * 0.8, np.nanmax(np.r_[xs, ys]) * 1.2
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ratio = np.nanmedian(ys / xs)
    ax.set_xlabel("oracle's weighted MSE, external-replicate weights")
    ax.set_ylabel("oracle's weighted MSE, leaky weights (own cells)")
    ax.set_title(f"c  Leaky weights pick genes where the held-out\n    noise is large: the truth's error x{ratio:.2f}",
                 fontsize=10, loc="left")
    # d
    ax = axes[3]
    curve = _scale_curve(scores)
    best = _best_scale(curve).set_index(["source", "metric"])["k_best"]
    for s in ("all", "rep_weights", "train"):
        d = curve[(curve["source"] == s) & (curve["metric"] == "wmse")].sort_values("k")
        v1 = float(d.loc[d["k"] == 1.0, "value"].iloc[0])
        ax.plot(d["k"], d["value"] / v1, "o-", color=SOURCE_COLORS[s], ms=4,
                label=f"{' '.join(SOURCES[s].split())}: best k = {best[(s, 'wmse')]:.3f}")
        ax.axvline(best[(s, "wmse")], color=SOURCE_COLORS[s], lw=0.8, ls=":")
    ax.set_xlabel("prediction = control + k x (true delta)")
    ax.set_ylabel("weighted MSE / weighted MSE at k = 1")
    tilt = "toward overshooting" if best[("all", "wmse")] > best[("rep_weights", "wmse")] else "away from overshooting"
    ax.set_title(f"d  Leaky weights tilt {tilt} the true effect\n    (best k {best[('all', 'wmse')]:.3f} vs "
                 f"{best[('rep_weights', 'wmse')]:.3f} without leakage)", fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=7.5, loc="upper center")
    fig.tight_layout()
    return fig


def caption(tables) -> str:
    """Key numbers of the run."""
    scores = tables["scores"]
    drf_t = _drf(scores)
    drf = drf_t.set_index(["source", "metric", "positive"])["drf"]
    same = drf_t.pivot_table(index=["source", "positive"], columns="metric", values="drf")
    same_diff = float((same["wmse"] - same["weighted_r2_delta"]).abs().max())
    gn = _gain(scores)
    gn = gn[gn["metric"] == "wmse"].set_index("source")
    best = _best_scale(_scale_curve(scores)).set_index(["source", "metric"])["k_best"]
    w = _wide(scores)["oracle"].unstack("source").reset_index()
    w = w[w["metric"] == "wmse"]
    ratio = np.nanmedian(w["all"].to_numpy(float) / w["rep_weights"].to_numpy(float))
    m = scores.groupby(["source", "metric", "predictor"])["value"].mean()
    n_rep = scores["replicate"].nunique()
    n_pert = scores.groupby("replicate")["perturbation"].nunique().sum()
    name = {"train": "train only (one vector averaged over training perturbations)",
            "all": "all perturbations (leaky: each test perturbation's weights from its own scored cells)",
            "rep_weights": "external replicate (the same per-perturbation weights from an independent redraw)",
            "expr_weights": "external expression (min-max scaled squared control mean)",
            "uniform": "none (uniform)"}

    def pct(p):
        return ", ".join(f"{100 * gn.loc[s, p + '_fraction']:.0f}%" for s in SOURCES)

    return (
        f"CRISPRi screens of single cells (25 cells per perturbation; {n_rep} screen(s), {n_pert} held-out "
        "perturbations in all). Gene weights: min-max scaled squared t-statistic of a perturbation against the other "
        "perturbed cells (Mejia et al.). Sources, in the order of the bars: " + "; ".join(name[s] for s in SOURCES)
        + ". a: dynamic range fraction of the technical duplicate vs the mean baseline (median over perturbations): "
        + ", ".join(f"{drf[(s, 'wmse', 'technical_duplicate')]:.2f}" for s in SOURCES)
        + "; of the oracle: " + ", ".join(f"{drf[(s, 'wmse', 'oracle')]:.2f}" for s in SOURCES)
        + f". Weighted R2 of deltas has the same DRF (max difference {same_diff:.1e}): its denominator does not "
        "depend on the prediction. Train-only weights, one vector averaged over training perturbations, and the "
        "external expression vector change little against no weights; the discrimination of the published "
        "metrics comes from per-perturbation weights, which an independent replicate provides without leakage. "
        f"b: gain over control as % of the oracle's gain (weighted MSE), technical duplicate: {pct('technical_duplicate')}; "
        f"mean baseline: {pct('mean')}; target-only: {pct('target_only')}. "
        f"c: with leaky weights the oracle's weighted MSE is {ratio:.2f}x (median over perturbations) its value "
        f"with external-replicate weights ({m[('all', 'wmse', 'oracle')]:.4f} vs {m[('rep_weights', 'wmse', 'oracle')]:.4f}): "
        "the leaky weights select genes where the held-out cells' noise is large, so even the truth looks worse. "
        f"d: the scale k of the true delta that minimises weighted MSE is {best[('all', 'wmse')]:.3f} with leaky "
        f"weights, {best[('rep_weights', 'wmse')]:.3f} with external-replicate weights and "
        f"{best[('train', 'wmse')]:.3f} with train-only weights (weighted R2: {best[('all', 'weighted_r2_delta')]:.3f}, "
        f"{best[('rep_weights', 'weighted_r2_delta')]:.3f}, {best[('train', 'weighted_r2_delta')]:.3f}); above 1 the "
        "metric prefers predictions that exaggerate the true effects."
    )
