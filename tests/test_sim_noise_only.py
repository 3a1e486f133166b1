"""The noise-only design of PEREGGRN: layout and the mean-baseline correlation."""

from __future__ import annotations

import numpy as np

import simpert.sim as sim


def test_design_layout():
    a = sim.noise_only(rng=0)
    assert a.shape == (100, 100)
    assert a.X.dtype == np.float64
    assert list(a.obs.role[:2]) == ["control", "train"]
    assert (a.obs.role == "control").sum() == 1 and (a.obs.role == "train").sum() == 49
    assert (a.obs.role == "test").sum() == 50
    assert a.obs.perturbation.cat.categories[0] == "control"
    assert a.obs.is_control.sum() == 1
    assert np.all(a.uns["simpert"]["truth"]["log2fc"] == 0)
    b = sim.noise_only(n=30, n_genes=20, n_controls=3, controls_in_train=False, n_train=10, m=2, rng=1)
    assert (b.obs.role == "control").sum() == 3 and (b.obs.role == "train").sum() == 10
    assert (b.obs.role == "test").sum() == (30 - 10 - 3) * 2
    test = b.obs[b.obs.role == "test"]
    assert test.groupby("perturbation", observed=True).size().eq(2).all()
    assert set(test.replicate) == {0, 1}


def test_noise_laws_and_effects():
    a = sim.noise_only(n=60, n_genes=4000, noise="nb", mean=20.0, dispersion=0.25, rng=2)
    assert a.X.dtype == np.int64
    x = a.X.astype(float)
    assert abs(x.mean() - 20) < 4 * np.sqrt((20 + 0.25 * 400) / x.size)
    assert abs(x.var() / (20 + 0.25 * 400) - 1) < 0.03
    e = sim.noise_only(n=200, n_genes=300, effect_sd=2.0, sigma=0.5, rng=3)
    t = sim.truth(e)
    assert abs(t.log2fc.to_numpy().std() - 2.0) < 0.03
    # observed rows = effect + noise
    obs = e.obs
    rows = np.flatnonzero(obs.role.to_numpy() != "control")
    eff = t.log2fc.loc[obs.perturbation.astype(str).to_numpy()[rows]].to_numpy()
    resid = e.X[rows] - eff
    assert abs(resid.std() - 0.5) < 0.01
    assert np.array_equal(sim.noise_only(rng=5).X, sim.noise_only(rng=5).X)


def _mean_baseline_corr(a):
    x = a.X
    role = a.obs.role.to_numpy()
    ctrl = x[role == "control"].mean(0)
    train = x[(role == "control") | (role == "train")].mean(0)
    pred = train - ctrl
    test = x[role == "test"] - ctrl
    p = pred - pred.mean()
    t = test - test.mean(1, keepdims=True)
    return float(np.mean((t @ p) / (np.linalg.norm(t, axis=1) * np.linalg.norm(p))))


def test_pereggrn_mean_correlation_monte_carlo():
    """Mean correlation of the mean baseline: 0.698 +- 0.005 and the closed form."""
    n_rep = 2000
    seeds = np.random.SeedSequence(2024).spawn(n_rep)
    vals = np.array([_mean_baseline_corr(sim.noise_only(rng=s)) for s in seeds])
    mc, se = vals.mean(), vals.std(ddof=1) / np.sqrt(n_rep)
    n, G = 50, 100
    rho = np.sqrt((n - 1) / (2 * n))
    closed = rho * (1 - (1 - rho**2) / (2 * G))
    assert abs(mc - 0.698) < 0.005
    assert abs(mc - closed) < 4 * se + 2e-4, (mc, closed, se)


def test_h5ad_roundtrip(tmp_path):
    import anndata as ad

    a = sim.noise_only(n=40, n_genes=10, n_train=20, m=2, effect_sd=1.0, noise="nb", rng=4)
    a.write_h5ad(tmp_path / "n.h5ad")
    b = ad.read_h5ad(tmp_path / "n.h5ad")
    np.testing.assert_array_equal(a.X, b.X)
    assert sim.truth(b).log2fc.equals(sim.truth(a).log2fc)
    assert bool(sim.truth(b).params["controls_in_train"]) is True


def test_count_noise_carries_the_effects_as_fold_changes():
    # noise="nb": E[X] = mean * 2^effect per row; with 0.5-SD effects the log2 ratio of each
    # perturbation's average count to the control rows' recovers its effects (slope 1)
    a = sim.noise_only(n=40, n_genes=2000, noise="nb", mean=200.0, dispersion=0.01, effect_sd=0.5, m=20, n_train=30,
                       n_controls=20, rng=4)
    t = sim.truth(a)
    obs = a.obs
    x = a.X.astype(float)
    ctrl = x[obs.role.to_numpy() == "control"].mean(0)
    test = [p for p in t.log2fc.index if (obs.perturbation.astype(str) == p).sum() == 20][:5]
    assert len(test) == 5
    for p in test:
        got = np.log2(x[(obs.perturbation.astype(str) == p).to_numpy()].mean(0) / ctrl)
        want = t.log2fc.loc[p].to_numpy()
        slope = float(np.polyfit(want, got, 1)[0])
        assert abs(slope - 1) < 0.03, (p, slope)
