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
# # Score your model's predictions
#
# You have a model that predicts the cells (or the mean profile) of a genetic
# perturbation, and an observed screen to check it against. This vignette scores such
# predictions the way a statistician reports any estimate: with the value, an interval,
# the two anchors that say what the value means (a model that knows nothing beyond the
# average response, and a repeat of the experiment), and the number of test perturbations
# needed before a difference between two models can be trusted.
#
# The screen here is simulated, so that we know the answer, but nothing below uses
# simpert's own objects: the observed and predicted screens are plain AnnData files with
# their own labels, written and read as a user's would be.

# %%
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import Ridge

import simpert

out = Path(tempfile.mkdtemp())

# %% [markdown]
# ## The observed screen
#
# 40 CRISPRi perturbations, 60 cells each, 300 control cells, 500 genes. We keep only
# what a real data set has: counts, and a column saying which guide's target each cell
# carries, with controls labelled "non-targeting".

# %%
screen = simpert.sim.screen(n_genes=500, n_perturbations=40, n_control_cells=300, cells_per_perturbation=60,
                            p_effect=0.1, systematic_strength=0.5, rng=1)
labels = screen.obs["perturbation"].astype(str).replace({"control": "non-targeting"}).to_numpy()
real = ad.AnnData(X=sp.csr_matrix(screen.X, dtype=np.float32),
                  obs=pd.DataFrame({"target_gene": labels}, index=screen.obs_names),
                  var=pd.DataFrame(index=screen.var_names))
real.write_h5ad(out / "real.h5ad")
perts = sorted(set(labels) - {"non-targeting"})
train, test = perts[:20], perts[20:]
print(real)

# %% [markdown]
# ## A model built outside simpert
#
# A small linear model: for each training perturbation, the log-normalised mean profile
# is regressed (ridge) on a one-hot encoding of its target gene's control expression
# rank, and the held-out perturbations are predicted from the same features. Any model
# works here; what matters is that it writes its predictions as an AnnData of cells (or
# of one profile per perturbation) with the same labels and gene names.

# %%
logx = simpert._profiles.lognormalize(real.X)
frame = pd.DataFrame(logx.toarray(), columns=real.var_names)
profiles = frame.groupby(labels).mean()
control = profiles.loc["non-targeting"].to_numpy()
order = profiles.loc["non-targeting"].rank().to_dict()


def features(p):
    return np.array([order[p] / len(order), 1.0])


X_train = np.vstack([features(p) for p in train])
Y_train = np.vstack([profiles.loc[p].to_numpy() - control for p in train])
model = Ridge(alpha=1.0).fit(X_train, Y_train)
pred_profiles = control + model.predict(np.vstack([features(p) for p in test]))
pred_profiles[:, [real.var_names.get_loc(p) for p in test]] *= 0.3  # the model knows knockdown lowers the target
predicted = ad.AnnData(X=np.vstack([pred_profiles, control]),
                       obs=pd.DataFrame({"target_gene": test + ["non-targeting"]}, index=test + ["non-targeting"]),
                       var=pd.DataFrame(index=real.var_names))
predicted.write_h5ad(out / "ridge.h5ad")

# the mean baseline: every test perturbation predicted by the mean training profile
mean = ad.AnnData(X=np.vstack([np.tile(profiles.loc[train].mean().to_numpy(), (len(test), 1)), control]),
                  obs=predicted.obs.copy(), var=predicted.var.copy())
mean.write_h5ad(out / "mean.h5ad")

# %% [markdown]
# ## Evaluate
#
# The observed screen is given as counts and the predictions as log-normalised profiles;
# `evaluate` wants both sides on the same scale, so we hand it the observed screen
# log-normalised too. Perturbations the model did not predict (the training ones) are
# left out with a warning that lists them.

# %%
real_log = ad.AnnData(X=logx, obs=real.obs.copy(), var=real.var.copy())
real_log.write_h5ad(out / "real_log.h5ad")
res = simpert.metrics.evaluate(out / "ridge.h5ad", out / "real_log.h5ad", control="non-targeting",
                               perturbation_key="target_gene",
                               metrics=["pearson_delta", "mse", "discrimination_score_l1"], n_boot=1000, rng=0)
print(res.summary())

# %% [markdown]
# Read each row as: the value `u`, its 95% interval (bootstrap over the 20 test
# perturbations, holding the observed cells fixed), the mean-response baseline `b`, the
# split-half replicate `r` (half of each perturbation's cells predicting the other half,
# each half against its own control cells), and the score `(u - b) / (r - b)`: 0 is "no
# better than the average response", 1 is "as good as repeating the experiment with half
# the cells". Because the replicate has half the cells, a full-size replicate would do
# better: a score above 1 does not mean better than the experiment.
#
# On this screen the mean response beats the split-half replicate on `pearson_delta` and
# `mse`: the shared systematic response (strength 0.5) is something the average of the
# training perturbations knows exactly, while half of 60 cells measures it with noise.
# The scale then has no meaning, and `evaluate` gives no score, saying why (cell-eval2
# refuses such a panel too). Only the perturbation discrimination score, which looks at
# what distinguishes perturbations from each other, keeps a usable scale, and on it the
# ridge model is no better than the mean.

# %% [markdown]
# ## Is the model better than the mean baseline?
#
# A paired comparison over the same test perturbations: the mean difference, its
# interval, and a paired t-test.

# %%
cmp = simpert.metrics.compare(out / "ridge.h5ad", out / "mean.h5ad", out / "real_log.h5ad",
                              control="non-targeting", perturbation_key="target_gene",
                              metrics=["pearson_delta", "mse", "discrimination_score_l1"], n_boot=1000)
print(cmp.summary())

# %% [markdown]
# The ridge model loses to the mean baseline on all three metrics, each difference
# with an interval that excludes 0: the field's familiar finding, here with its
# uncertainty attached.

# %% [markdown]
# ## How many test perturbations would settle it?
#
# `power` fits nothing to the predictions: it simulates screens like this one and asks
# how many test perturbations a paired test needs to tell two models of known quality
# apart at 80% power, here the technical duplicate (a repeat of the experiment) and the
# mean baseline, for a few numbers of cells per perturbation.

# %%
scenario = {"scenario": {"name": "like_mine", "kind": "screen"},
            "params": {"n_genes": 500, "n_control_cells": 300, "p_effect": 0.1, "systematic_strength": 0.5}}
pw = simpert.calibrate.power("pearson_delta", scenario, cells_per_perturbation=[20, 60], n_pilot=4,
                             n_pilot_test=20, n_train=20, rng=0)
print(pw.summary())

# %% [markdown]
# The same from the command line:
#
# ```bash
# simpert evaluate --pred ridge.h5ad --real real_log.h5ad --control non-targeting \
#     --perturbation-key target_gene -m pearson_delta -m mse -o eval_ridge
# simpert compare --pred-a ridge.h5ad --pred-b mean.h5ad --real real_log.h5ad \
#     --control non-targeting --perturbation-key target_gene -m pearson_delta -o cmp.csv
# simpert power -m pearson_delta -s like_mine.toml --cells 20 --cells 60 -o power.csv
# ```
#
# `eval_ridge/results.csv` and `agg_results.csv` have cell-eval2's layout; `intervals.csv`
# holds the intervals, the anchors and the score.
