"""Predictors of known quality: definitions, quality ordering and the oracle's accuracy."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

import simpert.sim as sim
from simpert._profiles import group_profiles
from simpert.predict import (
    Context,
    Predictor,
    expected_log1p_ratio,
    expected_profiles,
    list_predictors,
    make,
    random_derangement,
    split,
)

ALL = ["oracle", "technical_duplicate", "mean", "median", "control", "systematic_only",
       "target_only", "shuffled", "ladder(0.5)", "network_ridge"]


@pytest.fixture(scope="module")
def screen():
    return sim.screen(n_genes=400, n_perturbations=24, n_control_cells=200, cells_per_perturbation=40,
                      p_effect=0.1, systematic_strength=1.0, rng=11)


@pytest.fixture(scope="module")
def sp(screen):
    return split(screen, test_fraction=0.5, rng=0)


@pytest.fixture(scope="module")
def preds(screen, sp):
    return make(screen, sp, ALL + ["ladder(0.0)", "ladder(0.25)", "ladder(0.75)", "ladder(1.0)"], rng=0)


@pytest.fixture(scope="module")
def observed(screen, sp):
    return group_profiles(screen).loc[list(sp.test)]


def _mse(pred, observed):
    return ((pred.profiles.to_numpy() - observed.to_numpy()) ** 2).sum(axis=1)


# --- the expectation engine ------------------------------------------------------------

def _brute(mu, r, phi, T=1e4):
    x = np.arange(0, 400_000, dtype=float)
    if phi == 0:
        lp = x * np.log(mu) - mu - gammaln(x + 1)
    else:
        k = 1 / phi
        lp = gammaln(x + k) - gammaln(k) - gammaln(x + 1) + k * np.log(k / (k + mu)) + x * np.log(mu / (k + mu))
    return float((np.exp(lp) * np.log1p(T * x / (x + r))).sum())


@pytest.mark.parametrize("mu", [1e-3, 0.3, 3.0, 30.0, 400.0, 4000.0])
@pytest.mark.parametrize("phi", [0.0, 0.05, 0.5, 5.0])
def test_expected_log1p_matches_brute_force_sum(mu, phi):
    got = expected_log1p_ratio(mu, 3000.0, phi)
    assert abs(got - _brute(mu, 3000.0, phi)) < 2e-4


def test_oracle_equals_monte_carlo_given_cell_means():
    """Oracle vs the mean of 100 fresh NB draws with the simulator's own per-cell means."""
    screen = sim.screen(n_genes=250, n_perturbations=10, n_control_cells=60, cells_per_perturbation=30,
                        p_effect=0.1, systematic_strength=1.0, escape_rate=0.2, modality="ko", rng=4)
    sp = split(screen, rng=0)
    ctx = Context(screen, sp, target_sum=1e4, seed=np.random.SeedSequence(0))
    labels = ["control"] + list(sp.test)
    exp = expected_profiles(ctx, labels).to_numpy()
    mu = sim.expected_counts(screen)
    phi = screen.var["dispersion"].to_numpy()
    gen = np.random.default_rng(5)
    K = 100
    lab = screen.obs["perturbation"].astype(str).to_numpy()
    ind = np.stack([lab == q for q in labels]).astype(float)
    ind /= ind.sum(axis=1, keepdims=True)
    acc = np.zeros_like(exp)
    acc2 = np.zeros_like(exp)
    for _ in range(K):
        x = gen.poisson(mu * gen.gamma(1 / phi, phi, size=mu.shape))
        g = ind @ np.log1p(1e4 * x / x.sum(axis=1, keepdims=True))
        acc += g
        acc2 += g * g
    m = acc / K
    se = np.sqrt(np.maximum(acc2 / K - m * m, 1e-300) / K)
    live = se > 1e-6
    z = (exp - m)[live] / se[live]
    assert abs(z.mean()) < 0.1
    assert 0.85 < z.std() < 1.15
    # the Jensen gap is real: log1p of the expected normalised mean is far off
    naive = np.log1p(1e4 * mu / mu.sum(axis=1, keepdims=True))
    naive_prof = pd.DataFrame(naive, index=screen.obs["perturbation"].astype(str)).groupby(level=0).mean()
    gap = np.abs(naive_prof.loc[labels].to_numpy() - m).max()
    assert gap > 20 * np.abs(exp - m).max() / 3


# --- quality ordering ---------------------------------------------------------------------

def test_oracle_beats_duplicate_and_mean(preds, observed):
    o = _mse(preds["oracle"], observed).mean()
    d = _mse(preds["technical_duplicate"], observed).mean()
    m = _mse(preds["mean"], observed).mean()
    c = _mse(preds["control"], observed).mean()
    assert o < d < m < c
    # an independent duplicate has about twice the oracle's error (noise of both draws)
    assert 0.38 < o / d < 0.62


def test_oracle_beats_duplicate_in_expectation_over_screens():
    wins = []
    for seed in range(3):
        a = sim.screen(n_genes=300, n_perturbations=20, n_control_cells=100, cells_per_perturbation=30,
                       p_effect=0.1, rng=100 + seed, output="pseudobulk" if seed == 2 else "cells")
        s = split(a, rng=seed)
        p = make(a, s, ["oracle", "technical_duplicate", "mean"], rng=seed)
        obs = group_profiles(a).loc[list(s.test)]
        o, d, m = (_mse(p[k], obs).mean() for k in ("oracle", "technical_duplicate", "mean"))
        wins.append(o < d and o < m)
    assert all(wins)


def test_ladder_endpoints_and_monotone(preds, observed):
    oracle = preds["oracle"].profiles.to_numpy()
    mean = preds["mean"].profiles.to_numpy()
    np.testing.assert_allclose(preds["ladder(0.0)"].profiles.to_numpy(), mean, atol=1e-12)
    np.testing.assert_allclose(preds["ladder(1.0)"].profiles.to_numpy(), oracle, atol=1e-12)
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    dist = [np.linalg.norm(preds[f"ladder({a})"].profiles.to_numpy() - oracle) for a in alphas]
    full = np.linalg.norm(mean - oracle)
    np.testing.assert_allclose(dist, [(1 - a) * full for a in alphas], rtol=1e-9, atol=1e-9)
    mse = [_mse(preds[f"ladder({a})"], observed).mean() for a in alphas]
    assert all(x > y for x, y in zip(mse, mse[1:]))


def test_ladder_endpoints_are_bit_identical(preds):
    # ladder(0) is the mean baseline and ladder(1) the oracle exactly, not up to rounding:
    # a correlation of the centred ladder(0) must be as undefined as the mean baseline's
    for a, ref in (("0.0", "mean"), ("1.0", "oracle")):
        got, want = preds[f"ladder({a})"], preds[ref]
        assert np.array_equal(got.profiles.to_numpy(), want.profiles.to_numpy()), a
        assert got.profiles.index.equals(want.profiles.index)
        assert got.profiles.columns.equals(want.profiles.columns)
        assert np.array_equal(got.control.to_numpy(), preds["mean"].control.to_numpy())
    lad0 = preds["ladder(0.0)"].profiles.to_numpy()
    assert np.all(lad0 == lad0[0])  # one row repeated: the prediction is exactly constant
    # an interior rung is the affine mixture of its ends
    mid = preds["ladder(0.25)"].profiles.to_numpy()
    np.testing.assert_allclose(mid, 0.75 * lad0 + 0.25 * preds["oracle"].profiles.to_numpy(), rtol=1e-13, atol=1e-13)


# --- definitions ---------------------------------------------------------------------------

def test_baselines_match_independent_computation(screen, sp, preds):
    lab = screen.obs["perturbation"].astype(str).to_numpy()
    X = screen.X.toarray().astype(float)
    logx = np.log1p(1e4 * X / X.sum(axis=1, keepdims=True))
    prof = pd.DataFrame(logx, columns=screen.var_names).groupby(lab).mean()
    train = prof.loc[list(sp.train)].to_numpy()
    np.testing.assert_allclose(preds["mean"].profiles.to_numpy()[0], train.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(preds["median"].profiles.to_numpy()[3], np.median(train, axis=0), atol=1e-12)
    np.testing.assert_allclose(preds["control"].profiles.to_numpy()[1], prof.loc["control"].to_numpy(), atol=1e-12)
    for p in preds.values():
        if p.name != "technical_duplicate":
            np.testing.assert_allclose(p.control.to_numpy(), prof.loc["control"].to_numpy(), atol=1e-12)
        assert list(p.profiles.index) == list(sp.test)
        assert list(p.profiles.columns) == list(screen.var_names)


def test_target_only_differs_from_control_only_at_targets(screen, sp, preds):
    tgt = preds["target_only"].profiles
    ctrl = preds["control"].profiles.to_numpy()
    diff = tgt.to_numpy() != ctrl
    targets = screen.obs.drop_duplicates("perturbation").set_index("perturbation")["target"]
    for i, p in enumerate(sp.test):
        cols = np.flatnonzero(diff[i])
        assert list(tgt.columns[cols]) == [targets[p]]
        j = cols[0]
        assert tgt.iloc[i, j] == preds["oracle"].profiles.iloc[i, j]
        # CRISPRi lowers its target below the shared response alone, where the gene is expressed
        if screen.var["base_mean"].iloc[j] >= 1.0:
            assert tgt.iloc[i, j] < preds["systematic_only"].profiles.iloc[i, j]


def test_shuffled_is_a_seeded_derangement_of_the_oracle(screen, sp, preds):
    o = preds["oracle"].profiles.to_numpy()
    s = preds["shuffled"].profiles.to_numpy()
    perm = [int(np.flatnonzero(np.all(o == row, axis=1))[0]) for row in s]
    assert sorted(perm) == list(range(len(perm)))
    assert all(p != i for i, p in enumerate(perm))
    again = make(screen, sp, ["shuffled", "mean"], rng=0)["shuffled"].profiles.to_numpy()
    np.testing.assert_array_equal(again, s)  # own stream: unaffected by the other predictors
    other = make(screen, sp, ["shuffled"], rng=1)["shuffled"].profiles.to_numpy()
    assert not np.array_equal(other, s)


def test_random_derangement_has_no_fixed_point_and_is_uniform():
    gen = np.random.default_rng(0)
    counts = {}
    for _ in range(3000):
        p = random_derangement(3, gen)
        assert not np.any(p == np.arange(3))
        counts[tuple(p)] = counts.get(tuple(p), 0) + 1
    assert set(counts) == {(1, 2, 0), (2, 0, 1)}
    assert abs(counts[(1, 2, 0)] - 1500) < 150
    with pytest.raises(ValueError, match="at least 2"):
        random_derangement(1, gen)


def test_systematic_only_follows_the_shared_response(screen, preds):
    shared = np.asarray(screen.uns["simpert"]["truth"]["shared_log2fc"])
    delta = preds["systematic_only"].profiles.to_numpy()[0] - preds["control"].profiles.to_numpy()[0]
    expressed = screen.var["base_mean"].to_numpy() > 2
    assert np.corrcoef(delta[expressed], shared[expressed])[0, 1] > 0.9
    flat = sim.screen(n_genes=100, n_perturbations=6, n_control_cells=40, cells_per_perturbation=10, rng=2)
    s = split(flat, rng=0)
    p = make(flat, s, ["systematic_only", "control"], rng=0)
    np.testing.assert_allclose(p["systematic_only"].profiles.to_numpy(), p["control"].profiles.to_numpy(), atol=1e-12)


def test_network_ridge_coefficients_match_sklearn(screen, sp):
    from sklearn.linear_model import Ridge

    from simpert.predict import NetworkRidge

    model = NetworkRidge(n_regulators=4, penalty=0.5)
    ctx = Context(screen, sp, target_sum=1e4, seed=np.random.SeedSequence(0))
    intercept, reg, w = model.fit(ctx)
    Z, row_target = model._training(ctx)
    trained_targets = set(row_target[row_target >= 0])
    for j in [0, 5, 17, 123] + sorted(trained_targets)[:2]:
        cols = reg[j][reg[j] >= 0]
        rows = row_target != j
        Xr = Z[rows][:, cols]
        sd = Xr.std(axis=0)
        fit = Ridge(alpha=0.5 * rows.sum()).fit(Xr / sd, Z[rows, j])
        np.testing.assert_allclose(w[j][reg[j] >= 0], fit.coef_ / sd, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(intercept[j], fit.intercept_, rtol=1e-6, atol=1e-9)


def test_network_ridge_prediction_clamps_target(screen, sp, preds, observed):
    nr = preds["network_ridge"].profiles
    targets = screen.obs.drop_duplicates("perturbation").set_index("perturbation")["target"]
    for p in sp.test:
        assert nr.loc[p, targets[p]] == observed.loc[p, targets[p]]
    assert np.all(np.isfinite(nr.to_numpy()))


def test_predicted_cells(screen, sp):
    p = make(screen, sp, ["mean", "technical_duplicate"], rng=0, cells=True)
    obs_counts = screen.obs["perturbation"].astype(str).value_counts()
    for name in ("mean", "technical_duplicate"):
        cells = p[name].cells
        got = cells.obs["perturbation"].astype(str).value_counts()
        for q in list(sp.test) + ["control"]:
            assert got[q] == obs_counts[q]
        assert set(got.index) == set(sp.test) | {"control"}
        assert cells.obs["perturbation"].cat.categories[0] == "control"
    # synthesised cells reproduce the predicted change from control
    prof = group_profiles(p["mean"].cells)
    want = p["mean"].profiles.iloc[0] - p["mean"].control
    got = prof.loc[sp.test[0]] - prof.loc["control"]
    expressed = screen.var["base_mean"].to_numpy() > 1
    assert np.corrcoef(want[expressed], got[expressed])[0, 1] > 0.8
    assert make(screen, sp, ["mean"], rng=0)["mean"].cells is None


def test_noise_only():
    data = sim.noise_only(n=60, n_genes=30, n_train=30, effect_sd=0.5, rng=0)
    s = split(data, rng=0)
    p = make(data, s, ["oracle", "mean", "control", "ladder(0.5)", "shuffled", "network_ridge"], rng=0)
    truth = np.asarray(data.uns["simpert"]["truth"]["log2fc"])
    names = list(np.asarray(data.uns["simpert"]["truth"]["perturbations"]).astype(str))
    idx = [names.index(t) for t in s.test]
    np.testing.assert_allclose(p["oracle"].profiles.to_numpy(), truth[idx])
    X = np.asarray(data.X)
    lab = data.obs["perturbation"].astype(str).to_numpy()
    train_rows = np.isin(lab, list(s.train))
    per_pert = pd.DataFrame(X[train_rows]).groupby(lab[train_rows]).mean()
    np.testing.assert_allclose(p["mean"].profiles.to_numpy()[0], per_pert.mean(axis=0).to_numpy())
    np.testing.assert_allclose(p["control"].profiles.to_numpy()[0], X[lab == "control"].mean(axis=0))
    assert make(data, s, ["mean"], cells=True)["mean"].cells is None


def test_registry_lists_every_predictor_with_a_description():
    table = list_predictors()
    assert {n.split("(")[0] for n in ALL} <= set(table["name"])
    assert table["description"].str.len().min() > 20


def test_user_predictor_object(screen, sp):
    class Half(Predictor):
        """Half way between control and the mean baseline."""

        name = "half"

        def __init__(self):
            pass

        def predict(self, ctx):
            return 0.5 * (ctx.train.mean(axis=0).to_numpy() + ctx.control.to_numpy()) + 0 * pd.DataFrame(
                0.0, index=ctx.test, columns=ctx.genes)

    p = make(screen, sp, [Half(), "mean"], rng=0)
    assert set(p) == {"half", "mean"}


@pytest.mark.parametrize(
    "predictors, exc, pattern",
    [
        (["nonsense"], ValueError, r"parameter 'predictors' must hold registered names .*got 'nonsense'"),
        (["ladder(1.5)"], ValueError, r"parameter 'alpha' must be a number in \[0, 1\]; got 1.5"),
        (["ladder()"], TypeError, r"does not match ladder"),
        (["ladder(x)"], ValueError, r"must use literal arguments"),
        (["oracle(control='nope')"], ValueError, r"parameter 'control' must be one of 'observed', 'expected'; got 'nope'"),
        (["network_ridge(penalty=0)"], ValueError, r"parameter 'penalty' must be a finite number in \(0, inf\); got 0"),
        ([], ValueError, r"at least one predictor"),
        (["mean", "mean"], ValueError, r"must not repeat a predictor"),
        ([3], TypeError, r"predictor names or Predictor objects; got int"),
        (["1+"], ValueError, r"names like 'mean'"),
    ],
)
def test_bad_predictors(screen, sp, predictors, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make(screen, sp, predictors)


def test_bad_make_arguments(screen, sp):
    with pytest.raises(TypeError, match=r"parameter 'split' must be a Split"):
        make(screen, {"train": ()}, ["mean"])
    with pytest.raises(ValueError, match=r"parameter 'target_sum' must be a finite number in \(0, inf\); got -1"):
        make(screen, sp, ["mean"], target_sum=-1)
    other = split(sim.screen(n_genes=50, n_perturbations=4, n_control_cells=10, cells_per_perturbation=3, rng=9), rng=0)
    with pytest.raises(ValueError, match=r"parameter 'split' must name perturbations of 'adata'"):
        make(screen, other, ["mean"])
    bare = screen.copy()
    del bare.uns["simpert"]
    with pytest.raises(ValueError, match=r"must carry the simulation truth"):
        make(bare, sp, ["oracle"])
    with pytest.raises(TypeError, match=r"parameter 'cells' must be a bool"):
        make(screen, sp, ["mean"], cells="yes")


def test_var_network_oracle_and_true_network_ridge():
    from simpert.predict import NetworkRidge
    from simpert.sim._network import erdos_renyi

    net = erdos_renyi(60, 0.08, signed=True, rng=0)
    data = sim.var_network(net, n_samples=20, n_controls=40, spectral_radius=0.5, steps=None,
                           noise_sd=0.05, rng=0)
    s = split(data, rng=0)
    G = data.n_vars
    p = make(data, s, ["oracle", "mean", "network_ridge", NetworkRidge(network=np.zeros((G, G)))], rng=0)
    tr = data.uns["simpert"]["truth"]
    names = list(np.asarray(tr["perturbations"]).astype(str))
    want = np.asarray(tr["expected_control"])[None, :] + np.asarray(tr["log2fc"])[[names.index(t) for t in s.test]]
    np.testing.assert_allclose(p["oracle"].profiles.to_numpy(), want, atol=1e-12)
    obs = pd.DataFrame(np.asarray(data.X)).groupby(data.obs["perturbation"].astype(str).to_numpy()).mean()
    obs = obs.loc[list(s.test)].to_numpy()
    err = {k: ((v.profiles.to_numpy() - obs) ** 2).sum(axis=1).mean() for k, v in p.items()}
    assert err["oracle"] < err["network_ridge"] < err["network_ridge(network='custom')"] < err["mean"]
    with pytest.raises(ValueError, match=r"parameter 'network' must be a finite 2-d numeric array"):
        make(data, s, [NetworkRidge(network=np.zeros(G))])
    with pytest.raises(ValueError, match=r"parameter 'network' must be one of 'auto', 'true', 'correlation'"):
        make(data, s, ["network_ridge(network='dense')"])


def test_network_ridge_tags_tell_custom_networks_apart():
    import numpy as np

    import simpert as sp
    from simpert.predict import NetworkRidge

    net = sp.sim.erdos_renyi(20, 0.1, rng=0)
    adata = sp.sim.var_network(net, n_samples=3, n_controls=10, noise_sd=0.05, rng=1)
    split = sp.predict.split(adata, test_fraction=0.3, rng=0)
    W = np.asarray(sp.sim.truth(adata).network)
    preds = sp.predict.make(adata, split, [NetworkRidge(network=W, tag="true"),
                                           NetworkRidge(network=np.zeros_like(W), tag="empty")], rng=0)
    assert list(preds) == ["network_ridge(true)", "network_ridge(empty)"]
    assert not np.allclose(preds["network_ridge(true)"].profiles, preds["network_ridge(empty)"].profiles)
    with pytest.raises(TypeError, match="parameter 'tag'"):
        sp.predict.make(adata, split, [NetworkRidge(network=W, tag=3)], rng=0)
