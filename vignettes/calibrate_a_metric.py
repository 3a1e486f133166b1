# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Calibrating a new metric, end to end
#
# You have invented a metric for perturbation-response predictions. Does it reward what
# it should? On real data nobody knows the true effects, so nobody can say. simpert
# simulates screens whose truth is known, builds predictions of **known quality** and
# scores them with your metric:
#
# * the **oracle** (the true expected profile) and a **technical duplicate** (an
#   independent draw of the same cells): what a perfect model could reach;
# * a **ladder** from the mean baseline (alpha = 0) to the truth (alpha = 1): a good
#   metric should increase along it;
# * the **mean** and **control** baselines, and reward hackers (**target only**,
#   **systematic only**, **shuffled** labels).
#
# The summary turns those scores into a few numbers per scenario: the dynamic range
# fraction (DRF, how much of the gap between the mean baseline and the best value the
# duplicate closes), Kendall's tau along the ladder, the AUROC separating duplicate from
# mean baseline, the null level on pure noise, and what the target gene alone earns.

# %%
import numpy as np

import simpert as sp

N_REPLICATES = 3
SMALL = {"n_genes": 200, "n_perturbations": 16}  # small screens keep this vignette quick

# %% [markdown]
# ## 1. Write the metric
#
# A metric takes one `MetricInput` (`inp.pred` and `inp.real`: test perturbations x
# genes, log-normalised profiles; `inp.pred_control`, `inp.real_control`: the control
# profiles) and returns one number per perturbation. Ours: the cosine similarity of the
# predicted and observed changes from control, on the 20 genes that move most.

# %%
def cosine_top20(inp):
    pred = np.asarray(inp.pred) - np.asarray(inp.pred_control)
    real = np.asarray(inp.real) - np.asarray(inp.real_control)
    top = np.argsort(-np.abs(real), axis=1)[:, :20]
    p = np.take_along_axis(pred, top, axis=1)
    r = np.take_along_axis(real, top, axis=1)
    den = np.linalg.norm(p, axis=1) * np.linalg.norm(r, axis=1)
    return np.divide((p * r).sum(axis=1), den, out=np.zeros(len(den)), where=den > 0)


my_metric = sp.metrics.Metric("cosine_top20", cosine_top20, higher_is_better=True, best=1.0,
                              description="cosine of deltas on the 20 most-changed genes")

# %% [markdown]
# ## 2. Calibrate it next to a built-in metric
#
# Three scenarios: strong sparse effects, weak ones, and pure noise. Each replicate is a
# fresh simulated screen; the same seed gives the same numbers whatever the executor.

# %%
scenarios = []
for name in ["sparse_strong", "sparse_weak", "noise_only"]:
    sc = sp.calibrate.load_scenario(name)
    scenarios.append(sp.calibrate.Scenario.from_dict(
        {"scenario": {"name": sc.name, "kind": sc.kind, "description": sc.description,
                      "test_fraction": sc.test_fraction},
         "params": {**sc.params_dict(), **SMALL}}))

cal = sp.calibrate.calibrate([my_metric, "pearson_delta", "mse"], scenarios,
                             n_replicates=N_REPLICATES, rng=0, executor="serial")
cal

# %% [markdown]
# The tidy table holds every score: scenario, replicate, predictor, perturbation,
# metric, value.

# %%
cal.table.head()

# %%
summary = cal.summary()
summary

# %% [markdown]
# One line per metric, from the statistics above:

# %%
for m in summary.metrics:
    print(summary.verdict(m))

# %% [markdown]
# ## 3. Read the calibration card
#
# The card shows one metric at a glance: the ladder curve, the dynamic range, the null
# level, duplicate vs mean baseline, target-gene and systematic gains.

# %%
fig = sp.pl.calibration_card(cal, metric="cosine_top20")

# %% [markdown]
# ## 4. The same from the command line or from R
#
# Put `cosine_top20` in a file `my_metrics.py` and run
#
# ```bash
# simpert calibrate --metric my_metrics.py:cosine_top20 --best 1 \
#     --scenario sparse_strong --scenario sparse_weak --scenario noise_only \
#     --replicates 10 --seed 0 -o calibration/
# ```
#
# which writes `table.csv`, `summary.csv`, `summary.json` and `card_cosine_top20.png`.
# A metric written in R is calibrated the same way, with `--metric my_metric.R:fun`, or
# from R with `simpert::calibrate_metric(fun, ...)` (see the R vignette).

# %%
tau = summary.stat("tau")
drf = summary.stat("drf_mean")
print("ladder tau:\n", tau.round(2))
print("DRF vs mean baseline:\n", drf.round(2))
