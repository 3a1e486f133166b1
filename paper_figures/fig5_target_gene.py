"""Figure 5: the directly targeted gene, and how metrics handle it.

CRISPRi pseudobulk screens (package defaults for guide efficiency and escapers; sparse, weak
specific effects as for most perturbations of a genome-wide screen: 2% of genes, median
|log2FC| 0.5; 30 cells per perturbation; gene means Gamma(shape 1, scale 5) so that, as in
real screens, targets are expressed genes). Four views:

a: the perturbation discrimination score (PDS, cell-eval's ``discrimination_score_l1``) of a
   constant prediction (the mean baseline) against the number N of perturbations ranked
   (300 genes):
   with the target kept it is exactly ``(N + 1) / (2N)``; cell-eval's one-sided exclusion
   (the predicted perturbation's target is dropped from all its distances) lifts it, the
   more so the fewer genes are scored; pairwise exclusion (both targets dropped) lowers
   it; Kernfeld's fair pairwise retrieval (genes i and j dropped from both distances of
   each comparison) stays at its null 0.5.
b: the size of that bias at N = 20 against the number of genes scored, for the l1, l2 and
   cosine distances: the target is a larger share of a short delta vector, and a still
   larger share of its squared norm.
c: the reward hacker ``target_only`` (control with only the target gene set to its true
   value): its gain over the control baseline, as a fraction of the oracle's gain, under
   each target-gene option.
d: retrieval scores of predictors of known quality above each variant's null.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

import simpert as sp

__all__ = ["NAME", "TITLE", "compute", "plot", "caption"]

NAME = "fig5_target_gene"
TITLE = "Figure 5. The targeted gene: PDS exclusion bias, reward hacking, and a fair pairwise retrieval"
SCREEN = dict(mean_shape=1.0, mean_scale=5.0, n_control_cells=500, cells_per_perturbation=30, p_effect=0.02,
              effect_size=0.5)
VARIANTS = {  # label -> (metric, target option)
    "PDS, target kept": ("discrimination_score_l1", "include"),
    "PDS, one-sided exclusion (cell-eval)": ("discrimination_score_l1", "exclude"),
    "PDS, pairwise exclusion": ("discrimination_score_l1", "pairwise"),
    "fair pairwise retrieval (Kernfeld)": ("fair_retrieval", "pairwise"),
}
DISTANCE_VARIANTS = {
    "PDS l2, one-sided exclusion": ("discrimination_score_l2", "exclude"),
    "PDS cosine, one-sided exclusion": ("discrimination_score_cosine", "exclude"),
}
N_BIAS = 20  # panel b: perturbations ranked
G_MAIN = 300  # panel a: genes scored
GAIN_METRICS = {
    "pearson_delta": "Pearson of deltas",
    "pereggrn_pearson_top_n": "Pearson, top-20 genes",
    "mse": "MSE",
    "discrimination_score_l1": "PDS (l1)",
    "fair_retrieval": "fair retrieval",
}
OPTIONS = ("include", "exclude", "pairwise", "reveal")
OPTION_LABELS = {"include": "target kept", "exclude": "one-sided exclusion", "pairwise": "pairwise exclusion",
                 "reveal": "target revealed (PEREGGRN)"}
RETRIEVAL_PREDICTORS = ("oracle", "technical_duplicate", "ladder(0.5)", "target_only", "mean", "control")


def _seed(ss: np.random.SeedSequence) -> np.random.SeedSequence:
    return np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key)


def _subset(inp, rows: np.ndarray):
    """The metric input restricted to some test perturbations (rows)."""
    return dataclasses.replace(
        inp, pred=inp.pred[rows], real=inp.real[rows], targets=inp.targets[rows],
        perturbations=tuple(np.asarray(inp.perturbations)[rows]))


def _null_curve(G: int, rep: int, ss: np.random.SeedSequence, fast: bool) -> pd.DataFrame:
    """Panel a: PDS variants of the mean baseline on random subsets of N test perturbations."""
    s_sim, s_split, s_sub = ss.spawn(3)
    adata = sp.sim.screen(n_genes=G, n_perturbations=90, output="pseudobulk", rng=s_sim, **SCREEN)
    split = sp.predict.split(adata, test_fraction=0.5, rng=s_split)
    pred = sp.predict.make(adata, split, ["mean"])["mean"]
    base = sp.metrics.build_input(pred, adata, split)
    gen = np.random.default_rng(s_sub)
    n_test = len(split.test)
    rows = []
    for N in ((2, 5, 10, 20, 40) if fast else (2, 3, 5, 10, 20, 40)):
        for _ in range(15 if fast else 40):
            idx = np.sort(gen.choice(n_test, N, replace=False))
            variants = dict(VARIANTS)
            if N == N_BIAS:
                variants.update(DISTANCE_VARIANTS)
            for label, (metric, target) in variants.items():
                inp = dataclasses.replace(_subset(base, idx), target=target)
                val = np.asarray(sp.metrics.get(metric).fn(inp), float)
                rows.append({"G": G, "replicate": rep, "N": N, "variant": label, "value": float(np.mean(val))})
    return pd.DataFrame(rows)


def _main_screen(rep: int, ss: np.random.SeedSequence, fast: bool):
    """Panels b-d: one screen with every predictor, scored under every target option."""
    s_sim, s_split, s_pred = ss.spawn(3)
    G = 600 if fast else 1000
    adata = sp.sim.screen(n_genes=G, n_perturbations=60, output="pseudobulk", rng=s_sim, **SCREEN)
    split = sp.predict.split(adata, test_fraction=0.5, rng=s_split)
    preds = sp.predict.make(adata, split, list(RETRIEVAL_PREDICTORS), rng=s_pred)
    frames = []
    for opt in OPTIONS:
        sc = sp.metrics.score(preds, adata, split, metrics=list(GAIN_METRICS), target=opt)
        sc["option"] = opt
        frames.append(sc)
    scores = pd.concat(frames, ignore_index=True)
    scores["replicate"], scores["G"], scores["N"] = rep, G, len(split.test)
    return scores


def compute(*, fast: bool, rng) -> dict[str, pd.DataFrame]:
    """Null curves (panels a, b) and scores of every predictor under every option (c, d)."""
    n_rep = 1 if fast else 4
    n_null = 1 if fast else 2
    genes = (100, 300, 1000) if fast else (100, 300, 1000, 3000)
    s_null, s_main = np.random.SeedSequence(rng).spawn(2)
    seeds = s_null.spawn(len(genes) * n_null)
    null = pd.concat([_null_curve(G, r, seeds[i * n_null + r], fast) for i, G in enumerate(genes) for r in range(n_null)],
                     ignore_index=True)
    main = [_main_screen(r, s, fast) for r, s in enumerate(s_main.spawn(n_rep))]
    return {"null": null, "scores": pd.concat(main, ignore_index=True)}


# ---------------------------------------------------------------------------------------- tables
def _gains(scores: pd.DataFrame) -> pd.DataFrame:
    """Oriented gain of target_only over control, as a fraction of the oracle's gain."""
    m = scores.groupby(["option", "metric", "predictor"])["value"].mean().unstack("predictor")
    hib = {name: sp.metrics.get(name).higher_is_better for name in GAIN_METRICS}
    out = []
    for (opt, metric), row in m.iterrows():
        # a constant delta has no correlation: NaN counts 0, as in the challenge's scoring
        ctl = 0.0 if np.isnan(row["control"]) and "pearson" in metric else row["control"]
        hack = 0.0 if np.isnan(row["target_only"]) and "pearson" in metric else row["target_only"]
        sign = 1.0 if hib[metric] else -1.0
        gain, ref = sign * (hack - ctl), sign * (row["oracle"] - ctl)
        out.append({"option": opt, "metric": metric, "target_only": hack, "control": ctl, "oracle": row["oracle"],
                    "gain": gain, "oracle_gain": ref, "fraction": gain / ref if ref > 0 else np.nan})
    return pd.DataFrame(out)


def _retrieval(scores: pd.DataFrame) -> pd.DataFrame:
    """Score minus the variant's null for a constant prediction, per predictor and variant."""
    rows = []
    for label, (metric, opt) in VARIANTS.items():
        sub = scores[(scores["metric"] == metric) & (scores["option"] == opt)]
        per_rep = sub.groupby(["replicate", "predictor"])["value"].mean().reset_index()
        N = sub.groupby("replicate")["N"].first()
        null = N * 0 + 0.5 if metric == "fair_retrieval" else (N + 1) / (2 * N)
        per_rep["above_null"] = per_rep["value"] - per_rep["replicate"].map(null)
        g = per_rep.groupby("predictor")["above_null"]
        for p, v in g:
            rows.append({"variant": label, "predictor": p, "above_null": v.mean(),
                         "se": v.std() / np.sqrt(len(v)) if len(v) > 1 else np.nan})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- plot
def plot(tables):
    """Four panels: null curves vs N and vs G, reward-hacker gains, retrieval above null."""
    import matplotlib.pyplot as plt

    null, scores = tables["null"], tables["scores"]
    fig, axes = plt.subplots(1, 4, figsize=(21, 5.0), gridspec_kw={"width_ratios": [1.0, 1.0, 1.2, 1.2]})
    # a
    ax = axes[0]
    m = null.groupby(["variant", "G", "N"])["value"].mean().reset_index()
    sub = m[m["G"] == G_MAIN]
    Ns = np.sort(sub["N"].unique())
    grid = np.linspace(Ns.min(), Ns.max(), 200)
    ax.plot(grid, (grid + 1) / (2 * grid), color="k", lw=1.5, label="theory (N+1)/2N")
    styles = {"PDS, target kept": ("o", "none", "k"), "PDS, one-sided exclusion (cell-eval)": ("o", "-", "C3"),
              "PDS, pairwise exclusion": ("s", "--", "C0"), "fair pairwise retrieval (Kernfeld)": ("D", "-", "C2")}
    for label, (mk, ls, col) in styles.items():
        d = sub[sub["variant"] == label].sort_values("N")
        ax.plot(d["N"], d["value"], marker=mk, ls=ls, color=col, ms=5, label=label)
    ax.set_xscale("log")
    ax.set_xticks(Ns, [str(n) for n in Ns])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("perturbations ranked N")
    ax.set_ylabel(f"mean score of a constant prediction (mean baseline), G = {G_MAIN}")
    ax.set_title("a  A constant prediction should sit at the null;\n    one-sided exclusion lifts it above", fontsize=10,
                 loc="left")
    ax.legend(frameon=False, fontsize=7.5, loc="upper right")
    # b
    ax = axes[1]
    d = m[m["N"] == N_BIAS]
    theory = (N_BIAS + 1) / (2 * N_BIAS)
    styles = {"PDS l2, one-sided exclusion": ("^", "-", "C4", "l2, one-sided"),
              "PDS, one-sided exclusion (cell-eval)": ("o", "-", "C3", "l1, one-sided (cell-eval)"),
              "PDS cosine, one-sided exclusion": ("v", "-", "C5", "cosine, one-sided"),
              "PDS, target kept": ("o", "none", "k", "l1, target kept"),
              "PDS, pairwise exclusion": ("s", "--", "C0", "l1, pairwise")}
    for label, (mk, ls, col, short) in styles.items():
        e = d[d["variant"] == label].sort_values("G")
        ax.plot(e["G"], e["value"] - theory, marker=mk, ls=ls, color=col, ms=5, label=short)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    Gs = np.sort(d["G"].unique())
    ax.set_xticks(Gs, [str(g) for g in Gs])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("genes scored G")
    ax.set_ylabel(f"PDS of a constant prediction minus (N+1)/2N, N = {N_BIAS}")
    ax.set_title("b  The bias grows as fewer genes are scored,\n    most for the l2 distance", fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=7.5, loc="upper right")
    # c
    ax = axes[2]
    gains = _gains(scores)
    metrics = list(GAIN_METRICS)
    x = np.arange(len(metrics))
    width = 0.2
    for k, opt in enumerate(OPTIONS):
        d = gains[gains["option"] == opt].set_index("metric").reindex(metrics)
        ax.bar(x + (k - 1.5) * width, 100 * d["fraction"], width, color=f"C{k}", label=OPTION_LABELS[opt])
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [GAIN_METRICS[mm] for mm in metrics], rotation=15, fontsize=8)
    ax.set_ylabel("target-only gain over control\n(% of the oracle's gain)")
    ax.set_title("c  The reward hacker (control + true target level)\n    is paid only when the target is kept",
                 fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=7.5, loc="upper right")
    ax.text(0.6, 0.62, "every option but 'target kept':\nexactly 0 for every metric", transform=ax.transAxes,
            ha="center", fontsize=8, color="0.3")
    # d
    ax = axes[3]
    ret = _retrieval(scores)
    preds = list(RETRIEVAL_PREDICTORS)
    x = np.arange(len(preds))
    colors = ["k", "C3", "C0", "C2"]
    for k, label in enumerate(VARIANTS):
        d = ret[ret["variant"] == label].set_index("predictor").reindex(preds)
        ax.bar(x + (k - 1.5) * width, d["above_null"], width, yerr=2 * d["se"].fillna(0), color=colors[k],
               label=label, capsize=1.5, error_kw={"lw": 0.8})
    ax.axhline(0, color="k", lw=0.8)
    names = {"technical_duplicate": "technical\nduplicate", "ladder(0.5)": "ladder(0.5)", "target_only": "target-only",
             "mean": "mean\nbaseline", "control": "control", "oracle": "oracle"}
    ax.set_xticks(x, [names[p] for p in preds], fontsize=8)
    ax.set_ylabel("score minus its null for a constant prediction\n(PDS: (N+1)/2N; fair retrieval: 0.5)")
    ax.set_title("d  Fair pairwise retrieval: uninformative predictions\n    at exactly 0, informative ones kept",
                 fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def caption(tables) -> str:
    """Key numbers of the run."""
    null, scores = tables["null"], tables["scores"]
    m = null.groupby(["variant", "G", "N"])["value"].mean()
    N0 = N_BIAS
    theory = (N0 + 1) / (2 * N0)
    Gs = sorted(null["G"].unique())
    kept = null[(null["variant"] == "PDS, target kept")]
    kept_err = (kept["value"] - (kept["N"] + 1) / (2 * kept["N"])).abs().max()
    ex = ", ".join(f"{m[('PDS, one-sided exclusion (cell-eval)', G, N0)]:.3f} (G = {G})" for G in Gs)
    l2 = ", ".join(f"{m[('PDS l2, one-sided exclusion', G, N0)]:.3f}" for G in Gs)
    pw = ", ".join(f"{m[('PDS, pairwise exclusion', G, N0)]:.3f}" for G in Gs)
    fair = null[null["variant"] == "fair pairwise retrieval (Kernfeld)"]["value"]
    g = _gains(scores).set_index(["option", "metric"])["fraction"]
    ret = _retrieval(scores).set_index(["variant", "predictor"])["above_null"]
    n_rep = scores["replicate"].nunique()
    N_main = int(scores["N"].iloc[0])
    fair_lbl, one_lbl = "fair pairwise retrieval (Kernfeld)", "PDS, one-sided exclusion (cell-eval)"
    others = np.asarray([v for (opt, _), v in g.items() if opt != "include"], float)
    worst = float(np.nanmax(np.abs(others)))
    others_txt = "exactly 0 for every metric" if worst == 0 else f"at most {100 * worst:.2g}%"
    order = sorted(("oracle", "technical_duplicate", "ladder(0.5)"), key=lambda p: -ret[(fair_lbl, p)])
    return (
        "CRISPRi pseudobulk screens (30 cells per perturbation, 10% escapers, 2% of genes changed by each "
        "perturbation with median |log2FC| 0.5, gene means Gamma(1, 5)). "
        f"a, b: the PDS of the mean baseline (a constant prediction) with the target gene kept equals (N+1)/2N on "
        f"every random subset of N perturbations (max |diff| {kept_err:.1e}); at N = {N0} (null {theory:.4f}) "
        f"cell-eval's one-sided exclusion lifts it to {ex} with the l1 distance and to {l2} with l2; pairwise "
        f"exclusion lowers it to {pw}. Kernfeld's fair pairwise retrieval gives {fair.mean():.4f} "
        f"(range {fair.min():.3f}-{fair.max():.3f} over all N and G). "
        f"c: the target-only reward hacker (control with the target gene at its true level) earns "
        f"{100 * g[('include', 'pearson_delta')]:.0f}% of the oracle's gain over control in Pearson of deltas, "
        f"{100 * g[('include', 'pereggrn_pearson_top_n')]:.0f}% in Pearson over the top-20 genes, "
        f"{100 * g[('include', 'mse')]:.0f}% in MSE, {100 * g[('include', 'discrimination_score_l1')]:.0f}% in PDS and "
        f"{100 * g[('include', 'fair_retrieval')]:.0f}% in retrieval without exclusion when the target is kept; with "
        f"one-sided or pairwise exclusion or the target revealed its gain is {others_txt}. d: scores above the null ({n_rep} screen(s), N = {N_main} held-out perturbations): the mean "
        f"baseline gets {ret[(one_lbl, 'mean')]:+.3f} PDS from one-sided exclusion and {ret[(fair_lbl, 'mean')]:+.3f} "
        f"in fair retrieval, target-only {ret[(fair_lbl, 'target_only')]:+.3f}; fair retrieval of the informative "
        "predictors: " + ", ".join(f"{p} {ret[(fair_lbl, p)]:+.3f}" for p in order) + "."
    )
