"""Figure 12: does the verdict on each metric hold when the noise is real?

Every other figure calibrates metrics on screens whose noise is the simulator's own
(negative binomial counts, log-normal libraries, independent genes). Here the same effects
(5% of genes changed per perturbation, median |log2FC| 1.5, as in ``sparse_strong``; and a
``noise_only`` twin with no effect and 30 control cells) are planted by binomial thinning
(``simpert.sim.plant``) into control cells standing in for real ones, and each metric is
calibrated in three worlds on paired seeds:

- simulated: ``simpert.sim.screen`` end to end;
- simulated, planted depth: the same, with the libraries scaled down to the depth planted
  screens keep (planting can only remove counts: every gene that some perturbation raises
  is thinned in all cells, controls included), so that depth is not mistaken for noise;
- planted: effects planted into the simulator's control cells (the same gene law), so only
  the way effects enter differs (thinning of real counts instead of drawing from the model;
  the oracle then knows the effects but not the noise law);
- planted, structured noise: effects planted into control cells with what the simulator
  lacks: gene-gene correlation from five shared latent factors (30% of genes loaded) and
  wider, heavier-tailed libraries.

Panels: per metric, DRF vs the mean baseline, AUROC of the technical duplicate vs the mean
baseline, ladder tau and the noise-only null level, in each world, with the verdict
thresholds of ``simpert.calibrate.VERDICT_RULES``; the duplicate's mean score on a scale from
the mean baseline (0) to the oracle (1); the right column gives the verdict grade per world.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simpert import calibrate as cb

NAME = "fig12_planted"
TITLE = "Figure 12. Metric verdicts on simulated screens and on effects planted into control cells"
WORLDS = ("simulated", "simulated, planted depth", "planted", "planted, structured noise")
STATS = (("drf_mean", "DRF vs mean"), ("auroc", "AUROC duplicate vs mean"), ("tau", "ladder tau"),
         ("null_level", "noise-only null level"))
FAST_METRICS = ("pearson_delta", "mse", "mae", "mse_delta", "discrimination_score_l1", "pds_cosine",
                "systema_pearson_delta", "pereggrn_spearman", "r2_delta", "wmse", "perturbench_rank")
FULL_METRICS = FAST_METRICS + ("discrimination_score_cosine", "weighted_r2_delta", "pereggrn_pearson_top_n",
                               "overlap_at_N", "precision_at_N", "de_spearman_lfc_sig")
GENES = {"n_genes": 300, "mean_shape": 0.6, "mean_scale": 4.0}
SIGNAL = {"n_perturbations": 24, "cells_per_perturbation": 30.0, "n_control_cells": 120, "p_effect": 0.05,
          "effect_size": 1.5, "systematic_strength": 0.0}
NULL = {"n_perturbations": 24, "cells_per_perturbation": 30.0, "n_control_cells": 30, "modality": "crispra",
        "activation_fold": 1.0, "p_effect": 0.0, "systematic_strength": 0.0}
_MARKERS = {"simulated": ("o", "C0"), "simulated, planted depth": ("D", "C2"), "planted": ("s", "C1"),
            "planted, structured noise": ("^", "C3")}
_SHORT = {"simulated": "sim", "simulated, planted depth": "sim, depth", "planted": "planted",
          "planted, structured noise": "structured"}


def structured_controls(*, n_cells: int = 2400, rng=0):
    """Stand-in control cells with gene-gene correlation and wide libraries.

    Gene means from the simulator's gamma law (``GENES``); five latent factors, each
    loading 30% of the genes with N(0, 0.4^2) log-scale weights; libraries
    ``exp(t_5 * 0.35)`` (heavier tails than the simulator's log-normal); gamma-Poisson
    counts with dispersion 0.1 + 0.2 / mean.
    """
    import anndata as ad
    import scipy.sparse as sp

    g = np.random.default_rng(rng)
    G, K = GENES["n_genes"], 5
    mu = np.maximum(g.gamma(GENES["mean_shape"], GENES["mean_scale"], G), 1e-3)
    load = np.where(g.random((K, G)) < 0.3, 0.4 * g.standard_normal((K, G)), 0.0)
    f = g.standard_normal((n_cells, K))
    lib = np.exp(0.35 * g.standard_t(5, n_cells))
    eta = f @ load
    eta -= (load ** 2).sum(axis=0) / 2  # keep the mean of exp(eta) at 1
    disp = 0.1 + 0.2 / mu
    lam = lib[:, None] * mu[None, :] * np.exp(eta) * g.gamma(1.0 / disp, disp, (n_cells, G))
    X = g.poisson(lam)
    return ad.AnnData(X=sp.csr_matrix(X), obs=pd.DataFrame(index=[f"cell{i:05d}" for i in range(n_cells)]),
                      var=pd.DataFrame(index=[f"gene{j:04d}" for j in range(G)]))


def planted_depth(*, n_draws: int = 4, rng=0) -> float:
    """Mean library of a planted screen's control cells over that of their source cells.

    Planted with the ``SIGNAL`` effects into the stand-in control cells of
    :func:`simpert.calibrate.planted_controls`, averaged over ``n_draws`` seeds.
    """
    from simpert import sim

    ctrl = cb.planted_controls({"controls": "simulated", "stand_in": {**GENES, "n_control_cells": 2400}})
    from simpert._random import as_seed_sequence

    ratios = []
    for ss in as_seed_sequence(rng).spawn(n_draws):
        a = sim.plant(ctrl, rng=ss, **SIGNAL)
        c = a.obs[a.obs["is_control"]]
        ratios.append(c["library"].sum() / c["source_library"].sum())
    return float(np.mean(ratios))


def _scenarios(world: str, controls, depth: float) -> list:
    if world.startswith("simulated"):
        lib = {"library_loc": float(np.log(depth))} if world == "simulated, planted depth" else {}
        sig = cb.Scenario(name="sparse", kind="screen", params={**GENES, **SIGNAL, **lib})
        null = cb.Scenario(name="noise_only", kind="screen", params={**GENES, **NULL})
        return [sig, null]
    src = {"controls": "simulated", "stand_in": {**GENES, "n_control_cells": 2400}} if controls is None \
        else {"controls": controls}
    sig = cb.Scenario(name="sparse", kind="planted", params={**src, **SIGNAL})
    null = cb.Scenario(name="noise_only", kind="planted", params={**src, **NULL})
    return [sig, null]


def compute(*, fast: bool, rng) -> dict[str, pd.DataFrame]:
    """Calibrate the metrics in each world on paired seeds; keep statistics, verdicts and scores."""
    metrics = list(FAST_METRICS if fast else FULL_METRICS)
    n_rep = 3 if fast else 10
    run_ss, ctrl_ss, depth_ss = np.random.SeedSequence(rng).spawn(3)
    structured = structured_controls(rng=ctrl_ss)
    depth = planted_depth(rng=depth_ss)
    stats, verdicts, scores = [], [], []
    for world in WORLDS:
        scen = _scenarios(world, structured if world == "planted, structured noise" else None, depth)
        res = cb.calibrate(metrics, scen, n_replicates=n_rep, rng=run_ss, executor="serial")
        summ = res.summary()
        for m in metrics:
            grade_line = summ.verdict(m)
            verdicts.append({"world": world, "metric": m, "grade": grade_line.split(": ", 1)[1].split(" - ")[0],
                             "verdict": grade_line})
            for st, _ in STATS:
                where = "noise_only" if st == "null_level" else "sparse"
                long = summ.long
                row = long[(long["metric"] == m) & (long["scenario"] == where) & (long["statistic"] == st)]
                stats.append({"world": world, "metric": m, "statistic": st,
                              "mean": float(row["mean"].iloc[0]) if len(row) else np.nan,
                              "se": float(row["se"].iloc[0]) if len(row) and "se" in row else np.nan})
        t = res.table
        sub = t[(t["scenario"] == "sparse") & t["predictor"].isin(["oracle", "technical_duplicate", "mean"])]
        means = sub.groupby(["metric", "predictor"])["value"].mean().reset_index()
        scores.append(means.assign(world=world))
    return {"statistics": pd.DataFrame(stats), "verdicts": pd.DataFrame(verdicts),
            "scores": pd.concat(scores, ignore_index=True), "depth": pd.DataFrame({"planted_depth": [depth]})}


def calibrated_duplicate(scores: pd.DataFrame) -> pd.DataFrame:
    """The technical duplicate's mean score on a scale from the mean baseline (0) to the oracle (1).

    Parameters
    ----------
    scores : DataFrame
        ``metric``, ``predictor``, ``value``, ``world`` (mean scores on the signal scenario).

    Returns
    -------
    DataFrame
        ``world``, ``metric``, ``duplicate``, ``mean``, ``oracle`` (raw means) and the scaled
        ``duplicate``; NaN when the oracle and the mean baseline tie or a score is NaN.
    """
    w = scores.pivot_table(index=["world", "metric"], columns="predictor", values="value", dropna=False)
    w = w.reindex(columns=["mean", "technical_duplicate", "oracle"])
    gap = w["oracle"] - w["mean"]
    scaled = (w["technical_duplicate"] - w["mean"]) / gap.where(gap.abs() > 1e-12)
    out = w.rename(columns={"technical_duplicate": "duplicate_raw"}).assign(duplicate=scaled)
    return out.reset_index()


def plot(tables):
    """One row per metric; one panel per statistic; a marker per world; verdicts on the right."""
    import matplotlib.pyplot as plt

    stats = tables["statistics"]
    verd = tables["verdicts"]
    metrics = list(dict.fromkeys(stats["metric"]))
    y = np.arange(len(metrics))[::-1].astype(float)
    fig, axes = plt.subplots(1, len(STATS) + 2, figsize=(21, 0.42 * len(metrics) + 2.2), sharey=True,
                             gridspec_kw={"width_ratios": [1] * (len(STATS) + 1) + [0.9]})
    rules = {r[0]: (r[3], r[4]) for r in cb.VERDICT_RULES}
    for ax, (st, label), letter in zip(axes, STATS, "abcd"):
        for k, world in enumerate(WORLDS):
            marker, colour = _MARKERS[world]
            d = stats[(stats["statistic"] == st) & (stats["world"] == world)].set_index("metric").reindex(metrics)
            off = (1.5 - k) * 0.18
            ax.errorbar(d["mean"], y + off, xerr=d["se"].fillna(0.0), fmt=marker, color=colour, ms=5, lw=0.8,
                        label=world)
        if st in rules:
            thr, op = rules[st]
            ax.axvline(thr, color="k", lw=0.8, ls="--")
            ax.text(thr, 1.0, f" {op} {thr:g}", transform=ax.get_xaxis_transform(), fontsize=7, va="bottom")
        ax.set_title(f"{letter}  {label}", loc="left", fontsize=10)
        ax.grid(axis="x", color="0.9", lw=0.5)
        for yy in y:
            ax.axhline(yy - 0.5, color="0.93", lw=0.5)
    ax = axes[len(STATS)]
    dup = calibrated_duplicate(tables["scores"])
    for k, world in enumerate(WORLDS):
        marker, colour = _MARKERS[world]
        d = dup[dup["world"] == world].set_index("metric").reindex(metrics)
        ax.plot(d["duplicate"], y + (1.5 - k) * 0.18, marker, color=colour, ms=5, ls="none")
    for x in (0.0, 1.0):
        ax.axvline(x, color="0.6", lw=0.8, ls=":")
    ax.set_title("e  duplicate: mean baseline 0, oracle 1", loc="left", fontsize=10)
    ax.grid(axis="x", color="0.9", lw=0.5)
    for yy in y:
        ax.axhline(yy - 0.5, color="0.93", lw=0.5)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(metrics, fontsize=8)
    axes[0].legend(frameon=False, fontsize=8, loc="lower left")
    ax = axes[-1]
    ax.set_title("f  verdict per world", loc="left", fontsize=10)
    ax.set_xlim(-0.5, len(WORLDS) - 0.5)
    ax.set_xticks(range(len(WORLDS)))
    ax.set_xticklabels([_SHORT[w] for w in WORLDS], fontsize=7, rotation=30)
    colours = {"GOOD": "#1a9850", "MIXED": "#fdae61", "POOR": "#d73027"}
    for i, m in enumerate(metrics):
        grades = [verd[(verd["metric"] == m) & (verd["world"] == w)]["grade"].iloc[0] for w in WORLDS]
        for k, gr in enumerate(grades):
            ax.text(k, y[i], gr, ha="center", va="center", fontsize=7, color="white",
                    bbox=dict(boxstyle="round,pad=0.25", fc=colours.get(gr, "0.5"), ec="none"))
        if len(set(grades)) > 1:
            ax.text(len(WORLDS) - 0.35, y[i], "changes", fontsize=7, va="center", color="0.3")
    ax.tick_params(axis="y", length=0)
    ax.set_frame_on(False)
    fig.suptitle(f"{TITLE}  (paired seeds; mean and SE over replicate screens)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def caption(tables) -> str:
    """What the figure shows and this run's key numbers."""
    stats = tables["statistics"]
    verd = tables["verdicts"]
    metrics = list(dict.fromkeys(verd["metric"]))
    wide = verd.pivot(index="metric", columns="world", values="grade").reindex(metrics)
    changed = [m for m in metrics if wide.loc[m].nunique() > 1]

    def val(m, st, w):
        r = stats[(stats["metric"] == m) & (stats["statistic"] == st) & (stats["world"] == w)]
        return float(r["mean"].iloc[0]) if len(r) else float("nan")

    drf = {w: np.nanmedian([val(m, "drf_mean", w) for m in metrics]) for w in WORLDS}
    dup = calibrated_duplicate(tables["scores"])
    auc = {w: np.nanmedian([val(m, "auroc", w) for m in metrics]) for w in WORLDS}
    depth = float(tables["depth"]["planted_depth"].iloc[0]) if "depth" in tables else float("nan")
    lines = [
        "Calibration of each metric on the sparse_strong effects (and a noise-only twin) in four worlds on paired "
        f"seeds: simulated end to end; simulated with libraries scaled to the depth planted controls keep "
        f"({depth:.2f} of their source counts); planted by binomial thinning (simpert.sim.plant) into the simulator's control "
        "cells standing in for real ones; planted into control cells with gene-gene correlation (five latent factors) "
        "and heavier-tailed libraries. (a) DRF vs the mean baseline, (b) AUROC technical duplicate vs mean baseline, "
        "(c) ladder tau, (d) null level on the noise-only twin, with the verdict thresholds; (e) the technical "
        "duplicate's mean score on a scale from the mean baseline (0) to the oracle (1); (f) verdict grade.",
        "Median over metrics of DRF vs mean: " + ", ".join(f"{w} {drf[w]:.2f}" for w in WORLDS)
        + "; of AUROC: " + ", ".join(f"{w} {auc[w]:.2f}" for w in WORLDS) + ".",
        "Duplicate on the mean-to-oracle scale, median over metrics: "
        + ", ".join(f"{w} {np.nanmedian(dup.loc[dup['world'] == w, 'duplicate']):.2f}" for w in WORLDS) + ".",
        (f"Verdicts that change between worlds ({len(changed)} of {len(metrics)} metrics): "
         + "; ".join(f"{m} ({' / '.join(str(wide.loc[m, w]) for w in WORLDS)})" for m in changed) + "."
         if changed else f"No verdict changes between worlds ({len(metrics)} metrics)."),
        "Planting thins every count of a gene that some perturbation raises (the relative thinning of seqgendiff), "
        "so planted screens are shallower than their source cells, and the oracle knows the planted effects but "
        "only a negative binomial approximation of the noise.",
    ]
    return "\n".join(lines)
