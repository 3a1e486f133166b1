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
# # Why the mean baseline wins
#
# Predicting every held-out perturbation by the **mean of the training perturbations**
# keeps matching or beating published models. Part of the reason is not biology at all.
# On data with **no effects whatsoever** (every sample is noise) the mean baseline's
# predicted change from control correlates with the observed change at about 0.7 in the
# PEREGGRN design (50 training samples, 1 control, 100 genes). Both "changes" are taken
# against the same noisy control, so they share its noise: with training mean
# $\bar x$, control $c$ and test sample $y$, the predicted change is $\bar x - c$ and the
# observed change $y - c$; their per-gene covariance is $\mathrm{Var}(c) = \sigma^2$ and
#
# $$\rho = \frac{\sigma^2}{\sqrt{(\sigma^2/n_{\mathrm{eff}} + \sigma^2)\,(\sigma^2 + \sigma^2)}}$$
#
# which is 0.7 for the PEREGGRN design (see `simpert.theory.noise_only_rho` for the
# general form with the control inside the training set and m test replicates).

# %%
import numpy as np

import simpert as sp

# %%
rho = sp.theory.noise_only_rho(50, 1, 1)
expected_r = sp.theory.noise_only_correlation(n=50, n_controls=1, m=1, n_genes=100)
print(f"population rho = {rho:.4f}; expected sample Pearson over 100 genes = {expected_r:.5f}")

# %% [markdown]
# ## Monte Carlo: simulate the noise-only design and compute the baseline's correlation
#
# `simpert.sim.noise_only` draws the PEREGGRN matrix: 100 samples x 100 genes of
# standard normal noise, the first row the control, rows 1-50 the training set, the rest
# test samples. We compute the mean baseline's correlation directly.

# %%
def baseline_correlation(adata):
    x = np.asarray(adata.X, dtype=float)
    role = adata.obs["role"].to_numpy() if "role" in adata.obs else None
    control = x[role == "control"].mean(axis=0)
    train = x[np.isin(role, ["control", "train"])].mean(axis=0)
    tests = x[role == "test"]
    pred = train - control
    obs = tests - control
    pc = pred - pred.mean()
    oc = obs - obs.mean(axis=1, keepdims=True)
    r = (oc @ pc) / (np.linalg.norm(oc, axis=1) * np.linalg.norm(pc))
    return r.mean()


seeds = np.random.SeedSequence(1).spawn(400)
values = np.array([baseline_correlation(sp.sim.noise_only(rng=s)) for s in seeds])
se = values.std(ddof=1) / np.sqrt(values.size)
print(f"Monte Carlo mean correlation = {values.mean():.4f} +- {se:.4f} (closed form {expected_r:.4f})")
assert abs(values.mean() - expected_r) < 4 * se

# %% [markdown]
# The library's own validator does the same for any design, and reports the z-score:

# %%
res = sp.theory.validate("noise_only_correlation", {"n": 50, "n_controls": 1, "m": 1, "n_genes": 100},
                         n_replicates=300, rng=2)
res

# %% [markdown]
# ## More controls, more replicates: the illusion shrinks
#
# The shared-control term fades as the control is estimated from more samples, and the
# observed change is cleaner with more test replicates.

# %%
import matplotlib.pyplot as plt

n_controls = [1, 2, 5, 10, 25]
fig, ax = plt.subplots(figsize=(5, 3.5))
for m in (1, 3):
    ax.plot(n_controls, [sp.theory.noise_only_rho(50, c, m) for c in n_controls], "o-", label=f"m = {m} test replicates")
ax.set_xlabel("control samples")
ax.set_ylabel("correlation on pure noise")
ax.set_xscale("log")
ax.legend()
ax.set_title("Mean baseline vs truth when there is no truth")
fig.tight_layout()

# %% [markdown]
# ## Bias and variance when there are effects
#
# With real effects, the mean baseline trades bias (it predicts the average training
# effect $\bar D$ for every perturbation) for variance (it averages many samples). Its
# expected squared error beats the control prediction whenever $\bar D^2$ is small
# against the noise (`simpert.theory.baseline_mse`):

# %%
for dbar in (0.0, 0.5, 1.0, 1.5):
    b = sp.theory.baseline_mse(d_test=0.0, d_train_mean=dbar, noise_var=1.0, n_controls=1, n_perturbed=49)
    print(f"Dbar = {dbar:3.1f}: expected squared error per gene, control prediction "
          f"{np.mean(b.control):.3f}, mean baseline {np.mean(b.mean):.3f}")

# %% [markdown]
# ## On simulated count screens
#
# The same happens with negative binomial counts: on the noise-only scenario (no
# effects), the control-referenced `pearson_delta` of the mean baseline is far from 0,
# while the version referenced to the perturbed centroid is not.

# %%
sc = sp.calibrate.load_scenario("noise_only")
small = sp.calibrate.Scenario.from_dict({"scenario": {"name": "noise_only", "kind": sc.kind},
                                         "params": {**sc.params_dict(), "n_genes": 200, "n_perturbations": 16}})
cal = sp.calibrate.calibrate(
    ["pearson_delta", sp.calibrate.with_options("pearson_delta", reference="centroid", label="pearson_delta[centroid]")],
    [small], predictors=["oracle", "technical_duplicate", "mean", "control"], n_replicates=2, rng=3, executor="serial")
cal.table.groupby(["metric", "predictor"])["value"].mean().unstack().round(3)
