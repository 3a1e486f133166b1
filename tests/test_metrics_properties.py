"""Property tests: best values, order independence, the PDS constant-prediction value."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simpert.metrics as sm
from simpert.metrics import DETable, MetricInput, get, registry, score
from simpert.predict._types import Predictions, Split

from _metrics_data import nb_screen, observed, profile_prediction

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def random_input(seed, P, G, with_de=False):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(P, G))
    ctrl = rng.normal(size=G)
    train = rng.normal(size=(max(P, 6), G))
    targets = rng.choice(G, P, replace=P > G) if P > G else rng.choice(G, P, replace=False)
    de = None
    if with_de:
        lfc = rng.normal(size=(P, G)).astype(np.float32).astype(float)
        fdr = rng.uniform(0, 1, size=(P, G))
        fdr[:, :3] = rng.uniform(0, 0.01, size=(P, 3))  # every perturbation has DE genes
        fdr = fdr.astype(np.float32).astype(float)
        order = np.tile(np.arange(G), (P, 1))
        de = DETable(lfc=lfc, fdr=fdr, present=np.ones((P, G), bool), order=order)
    return MetricInput(pred=real.copy(), real=real, pred_control=ctrl.copy(), real_control=ctrl,
                       perturbations=tuple(f"p{i}" for i in range(P)), genes=tuple(f"g{j}" for j in range(G)),
                       targets=targets, train=train, train_perturbations=tuple(f"t{i}" for i in range(len(train))),
                       weights=rng.random(G) + 0.1, de_real=de, de_pred=de,
                       options=dict(sm.DEFAULT_OPTIONS, top_n=5, n_de=5, n_pcs=4, n_clusters=2))


def variants(inp, m):
    ref = m.reference
    out = dataclasses.replace(inp, target=m.target)
    if ref == "centroid":
        mu = inp.train.mean(axis=0)
        out = dataclasses.replace(out, reference_real=mu, reference_pred=mu)
    return out


PROFILE_METRICS = sorted(n for n, m in registry.items()
                         if m.best is not None and m.needs <= {"profiles", "train"}
                         and n != "pereggrn_cell_label_accuracy")
DE_METRICS = sorted(n for n, m in registry.items() if "de" in m.needs)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), P=st.integers(3, 9), G=st.integers(12, 40))
def test_perfect_prediction_gets_best_value(seed, P, G):
    inp = random_input(seed, P, G, with_de=True)
    for name in PROFILE_METRICS + DE_METRICS:
        m = get(name)
        vals = m.fn(variants(inp, m))
        np.testing.assert_allclose(vals, m.best, atol=1e-9, err_msg=name)


def test_perfect_prediction_cell_label_accuracy():
    inp = random_input(0, 6, 20)
    assert np.all(get("pereggrn_cell_label_accuracy").fn(inp) == 1.0)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), N=st.integers(2, 30), G=st.integers(5, 50),
       metric=st.sampled_from(["l1", "l2", "cosine"]))
def test_constant_prediction_pds_is_n_plus_1_over_2n(seed, N, G, metric):
    rng = np.random.default_rng(seed)
    inp = random_input(seed, N, G)
    const = np.tile(rng.normal(size=G), (N, 1))
    inp = dataclasses.replace(inp, pred=const, target="include")
    vals = get(f"discrimination_score_{metric}").fn(inp)
    # ranks of a constant prediction are a permutation of 0..N-1 (no ties in continuous data)
    assert Fraction(round(vals.mean() * 2 * N)) == N + 1
    assert abs(vals.mean() - (N + 1) / (2 * N)) < 1e-12


def test_constant_prediction_pds_with_exclusion_is_higher_on_average():
    """One-sided exclusion favours a constant prediction (the bias REFERENCES.md describes)."""
    hi = []
    for seed in range(30):
        N, G = 5, 30
        inp = random_input(seed, N, G)
        real = inp.real.copy()
        real[np.arange(N), inp.targets] -= 4.0  # each perturbation knocks down its target
        inp = dataclasses.replace(inp, real=real, pred=np.tile(inp.real_control, (N, 1)), target="exclude")
        hi.append(get("discrimination_score_l1").fn(inp).mean())
    assert np.mean(hi) > (N + 1) / (2 * N) + 0.1


@pytest.fixture(scope="module")
def screen():
    adata, _, _ = nb_screen(n_genes=40, n_perts=12, cells=20, n_ctrl=60, seed=2, named_by_target=False)
    perts = [str(p) for p in adata.obs["perturbation"].cat.categories[1:]]
    split = Split(train=tuple(perts[:6]), test=tuple(perts[6:]))
    prof = observed(adata)
    rng = np.random.default_rng(0)
    pm = prof.loc[list(split.test)].to_numpy() + rng.normal(scale=0.2, size=(6, 40))
    return adata, split, pm


ORDER_METRICS = sorted(n for n, m in registry.items()
                       if m.needs <= {"profiles", "train"} and n != "pereggrn_cell_label_accuracy")


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_results_do_not_depend_on_gene_or_perturbation_order(screen, seed):
    adata, split, pm = screen
    rng = np.random.default_rng(seed)
    pred = profile_prediction("m", adata, pm, split.test)
    base = score(Predictions([pred]), adata, split, metrics=ORDER_METRICS, weights="train")
    gperm = rng.permutation(adata.n_vars)
    a2 = adata[:, gperm].copy()
    tperm = rng.permutation(len(split.test))
    s2 = Split(train=tuple(rng.permutation(split.train)), test=tuple(np.asarray(split.test)[tperm]))
    p2 = profile_prediction("m", a2, pm[tperm][:, gperm], s2.test)
    other = score(Predictions([p2]), a2, s2, metrics=ORDER_METRICS, weights="train")
    key = ["perturbation", "metric"]
    x = base.set_index(key)["value"].sort_index()
    y = other.set_index(key)["value"].sort_index()
    np.testing.assert_allclose(x.to_numpy(), y.loc[x.index].to_numpy(), rtol=1e-9, atol=1e-12)
