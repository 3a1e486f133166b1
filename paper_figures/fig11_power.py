"""Figure 11: intervals and power in practice.

How many test perturbations does a paired comparison need before it can tell two models
apart? For four common metrics, pilot screens of a moderate scenario (300 genes, 5% of genes
changed per perturbation, a systematic response of strength 0.5) give the paired
differences of two comparisons: the technical duplicate (a repeat of the experiment) against
the mean baseline, and two neighbouring rungs of the quality ladder (alpha = 0.75 against
0.5: three quarters versus half of the true effect, the rest from the mean baseline).
``simpert.calibrate.sample_sizes`` turns them into the number of test perturbations a
paired t-test needs for 80% power at alpha 0.05 (resampling the pilot differences), as a
function of the cells per perturbation. Panel c shows the 95% bootstrap interval of each
metric's mean for the duplicate on 30 test perturbations, relative to the gap between the
two models it should separate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simpert import calibrate as cb

NAME = "fig11_power"
TITLE = "Figure 11. Intervals and power: test perturbations needed to tell two models apart"
METRICS = ("pearson_delta", "mse", "discrimination_score_l1", "overlap_at_N")
PAIRS = (("technical_duplicate", "mean"), ("ladder(0.75)", "ladder(0.5)"))
SCENARIO = {"scenario": {"name": "fig11", "kind": "screen"},
            "params": {"n_genes": 300, "n_control_cells": 200, "cell_count_dispersion": 0.0, "mean_shape": 0.6,
                       "mean_scale": 4.0, "p_effect": 0.05, "effect_size": 1.0, "systematic_strength": 0.5}}
_LABELS = {"pearson_delta": "Pearson delta", "mse": "MSE", "discrimination_score_l1": "PDS (l1)",
           "overlap_at_N": "DE overlap at N"}


def compute(*, fast: bool, rng) -> dict[str, pd.DataFrame]:
    """Pilot differences and sample sizes per cells setting, pair and metric."""
    cells = [10, 40, 160] if fast else [5, 10, 20, 40, 80, 160]
    n_pilot = 2 if fast else 6
    s_pilot, s_n = np.random.SeedSequence(rng).spawn(2)
    diffs = cb.pilot_differences(list(METRICS), SCENARIO, list(PAIRS), cells_per_perturbation=cells,
                                 n_pilot=n_pilot, n_pilot_test=30, n_train=30, rng=s_pilot)
    sizes = cb.sample_sizes(diffs, n_resamples=1000 if fast else 4000, rng=s_n)
    return {"differences": diffs, "sizes": sizes}


def plot(tables):
    """a, b: test perturbations needed per comparison; c: interval width vs the gap."""
    import matplotlib.pyplot as plt

    sizes = tables["sizes"]
    diffs = tables["differences"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for ax, (a, b), letter in zip(axes[:2], PAIRS, "ab"):
        pair = f"{a} - {b}"
        for k, m in enumerate(METRICS):
            d = sizes[(sizes["pair"] == pair) & (sizes["metric"] == m)].sort_values("cells_per_perturbation")
            y = d["n_required"].to_numpy(dtype=float)
            ax.plot(d["cells_per_perturbation"], np.where(np.isfinite(y), y, np.nan), "-o", color=f"C{k}", ms=4,
                    label=_LABELS[m])
            off = ~np.isfinite(y)
            if off.any():
                ax.plot(d["cells_per_perturbation"][off], np.full(off.sum(), 5000), "x", color=f"C{k}", ms=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(100, color="0.5", lw=0.8, ls=":")
        ax.text(0.98, 100, " a typical test set", color="0.4", fontsize=7, ha="right", va="bottom",
                transform=ax.get_yaxis_transform())
        ax.set_xlabel("cells per perturbation")
        ax.set_ylabel("test perturbations for 80% power")
        ax.set_title(f"{letter}  {a} vs {b}", fontsize=10, loc="left")
        ax.grid(color="0.9", lw=0.5)
        if letter == "a":
            ax.legend(frameon=False, fontsize=8)
    ax = axes[2]
    # half-width of a 95% interval of the mean over 30 perturbations, relative to the gap
    dd = diffs[diffs["pair"] == "technical_duplicate - mean"]
    rows = []
    for (c, m), g in dd.groupby(["cells_per_perturbation", "metric"]):
        sd = g.groupby("pilot")["d"].std(ddof=1).mean()
        gap = abs(g["d"].mean())
        rows.append((c, m, 1.96 * sd / np.sqrt(30) / gap if gap > 0 else np.nan))
    rel = pd.DataFrame(rows, columns=["cells", "metric", "ratio"])
    for k, m in enumerate(METRICS):
        d = rel[rel["metric"] == m].sort_values("cells")
        ax.plot(d["cells"], d["ratio"], "-o", color=f"C{k}", ms=4, label=_LABELS[m])
    ax.axhline(1, color="k", lw=1, ls="--")
    ax.text(0.02, 1.05, "above: the interval is wider than the gap", transform=ax.get_yaxis_transform(),
            fontsize=7, color="0.3")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cells per perturbation")
    ax.set_ylabel("95% half-width (30 perturbations) / |duplicate - mean|")
    ax.set_title("c  interval of a paired difference vs the difference", fontsize=10, loc="left")
    ax.grid(color="0.9", lw=0.5)
    n_pilot = int(diffs["pilot"].nunique())
    fig.suptitle(f"{TITLE}  (paired t-test, alpha 0.05; {n_pilot} pilot screens of 30 test perturbations "
                 "per setting; x: no n up to 5,000 reaches 80%)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def caption(tables) -> str:
    """What the figure shows and this run's key numbers."""
    s = tables["sizes"]

    def n(pair, m, c):
        r = s[(s["pair"] == pair) & (s["metric"] == m) & np.isclose(s["cells_per_perturbation"], c)]
        v = float(r["n_required"].iloc[0]) if len(r) else float("nan")
        return "more than 5,000" if not np.isfinite(v) else f"{int(v)}"

    cs = sorted(s["cells_per_perturbation"].unique())
    lo, hi = cs[0], cs[-1]
    dup, lad = "technical_duplicate - mean", "ladder(0.75) - ladder(0.5)"
    lines = [
        "Test perturbations a paired t-test needs (80% power, alpha 0.05) to tell the technical duplicate "
        "from the mean baseline (a) and two neighbouring ladder rungs (b), by cells per perturbation; "
        "resampled from pilot simulations (simpert.calibrate.sample_sizes). (c) 95% interval half-width of "
        "the mean paired difference over 30 perturbations, relative to the difference itself.",
        f"Duplicate vs mean baseline at {lo:g} / {hi:g} cells: Pearson delta {n(dup, 'pearson_delta', lo)} / "
        f"{n(dup, 'pearson_delta', hi)}, MSE {n(dup, 'mse', lo)} / {n(dup, 'mse', hi)}, PDS "
        f"{n(dup, 'discrimination_score_l1', lo)} / {n(dup, 'discrimination_score_l1', hi)}, DE overlap "
        f"{n(dup, 'overlap_at_N', lo)} / {n(dup, 'overlap_at_N', hi)} test perturbations.",
        f"Ladder 0.75 vs 0.5 at {lo:g} / {hi:g} cells: Pearson delta {n(lad, 'pearson_delta', lo)} / "
        f"{n(lad, 'pearson_delta', hi)}, MSE {n(lad, 'mse', lo)} / {n(lad, 'mse', hi)}, PDS "
        f"{n(lad, 'discrimination_score_l1', lo)} / {n(lad, 'discrimination_score_l1', hi)}, DE overlap "
        f"{n(lad, 'overlap_at_N', lo)} / {n(lad, 'overlap_at_N', hi)}.",
        "Where the duplicate and the mean baseline are close (their gap changes sign as cells grow, for MSE), "
        "no test set of realistic size separates them. Ladder steps are separated by few perturbations on "
        "continuous metrics, because both rungs share the same observed noise; a rank metric that saturates "
        "(PDS of 1 for both rungs with many cells) cannot separate them at all.",
    ]
    return "\n".join(lines)
