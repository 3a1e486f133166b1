"""Every validated parameter of the simulators takes exactly its documented range.

One row per parameter: the range as the documentation states it (the class docstrings, the
error messages users see, docs/simulators.md), written here by hand rather than read from the
code's validation table. Each row is probed at both ends: an end that belongs to the range is
accepted, a value just outside it is refused with an error naming the parameter; an open end
is refused at the end itself and accepted just inside. Integers are probed at the end and one
step beyond. A slip in a bound (``Integer(1)`` for ``Integer(0)``, 10_000 for 1_000) or in
which end is closed fails here.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import simpert as sp

INF = math.inf

# (class, name, kind, low, high, low_closed, high_closed, base keyword arguments)
#   kind "int": integer range [low, high] (high None: no upper bound)
#   kind "real": interval with the given closedness (None: unbounded on that side)
# the count layer, shared by ScreenParams and NetworkParams ("as in ScreenParams")
COUNT_LAYER = [
    ("mean_shape", "real", 0, None, False, True, {}),
    ("mean_scale", "real", 0, None, False, True, {}),
    ("min_mean", "real", 0, None, False, True, {}),
    ("dispersion_a0", "real", 0, 1000, True, True, {}),
    ("dispersion_a1", "real", 0, 1000, True, True, {}),
    ("library_loc", "real", -20, 20, True, True, {}),
    ("library_sd", "real", 0, 5, True, True, {}),
]

SCREEN = [
    ("n_genes", "int", 1, None, True, True, {"n_perturbations": 1}),
    ("n_perturbations", "int", 0, None, True, True, {}),
    ("unmeasured_targets", "int", 0, None, True, True, {}),
    ("n_control_cells", "int", 1, None, True, True, {}),
    ("cells_per_perturbation", "real", 0, None, False, True, {}),
    ("cell_count_dispersion", "real", 0, None, True, True, {}),
    ("min_cells", "int", 1, None, True, True, {}),
    ("n_replicates", "int", 1, None, True, True, {}),
    ("replicate_sd", "real", 0, None, True, True, {}),
    *COUNT_LAYER,
    ("dispersion_sd", "real", 0, None, True, True, {}),
    ("n_guides", "int", 1, None, True, True, {}),
    ("efficiency_a", "real", 0, None, False, True, {}),
    ("efficiency_b", "real", 0, None, False, True, {}),
    ("escape_rate", "real", 0, 1, True, False, {}),
    ("ko_residual", "real", 0, 1, False, True, {}),
    ("activation_fold", "real", 1, None, True, True, {}),
    ("p_effect", "real", 0, 1, True, True, {}),
    ("effect_size", "real", 0, None, True, True, {}),
    ("effect_sd", "real", 0, None, True, True, {}),
    ("systematic_strength", "real", 0, None, True, True, {}),
    ("systematic_sd", "real", 0, None, True, True, {}),
    ("hill_coefficient", "real", 0, 100, False, True, {}),
    ("hill_half", "real", 0, 100, False, True, {}),
    ("n_programs", "int", 0, 100, True, True, {}),
    ("program_density", "real", 0, 1, True, True, {}),
    ("program_sd", "real", 0, 10, True, True, {}),
    ("program_shift_sd", "real", 0, 10, True, True, {}),
    ("n_batches", "int", 1, 10_000, True, True, {}),
    ("batch_sd", "real", 0, 10, True, True, {}),
    ("no_guide_rate", "real", 0, 1, True, True, {}),
    ("multiplet_rate", "real", 0, 1, True, True, {}),
    ("n_combinations", "int", 0, None, True, True, {}),
    ("interaction_strength", "real", 0, 1, True, True, {}),
    ("n_contexts", "int", 1, 1000, True, True, {}),
    ("context_shared", "real", 0, 1, True, True, {}),
    ("context_sd", "real", 0, 10, True, True, {}),
]

# n: at least n_train + 1 (n_train + n_controls + 1 without controls in training), so its
# smallest value depends on the others (its messages are tested in test_sim_validation.py)
NOISE_ONLY = [
    ("n_genes", "int", 2, None, True, True, {}),
    ("n_controls", "int", 1, None, True, True, {}),
    ("n_train", "int", 1, None, True, True, {"controls_in_train": False}),
    ("m", "int", 1, None, True, True, {}),
    ("sigma", "real", 0, None, False, True, {}),
    ("effect_sd", "real", 0, None, True, True, {}),
    ("mean", "real", 0, None, False, True, {}),
    ("dispersion", "real", 0, None, True, True, {}),
]

NETWORK = [
    ("n_samples", "int", 1, None, True, True, {}),
    ("n_controls", "int", 1, None, True, True, {}),
    ("spectral_radius", "real", 0, None, False, True, {}),
    ("steps", "int", 1, None, True, True, {}),
    ("clamp_value", "real", None, None, True, True, {}),
    ("noise_sd", "real", 0, None, True, True, {}),
    ("count_scale", "real", 0, None, True, True, {}),
    *COUNT_LAYER,
]

ROWS = ([("ScreenParams", *r) for r in SCREEN] + [("NoiseOnlyParams", *r) for r in NOISE_ONLY]
        + [("NetworkParams", *r) for r in NETWORK])


def _probes(kind, low, high, low_closed, high_closed):
    """(value, accepted) pairs at and around both ends of the documented range."""
    out = []
    if kind == "int":
        if low is not None:
            out += [(low, True), (low - 1, False), (low + 1, True)]
        if high is not None:
            out += [(high, True), (high + 1, False), (high - 1, True)]
        else:
            out += [(low + 1000, True)]
        return out
    for end, closed, inward in ((low, low_closed, 1.0), (high, high_closed, -1.0)):
        if end is None:
            out.append((inward * -1e12, True))  # unbounded on that side: far values are fine
            continue
        step = 1e-3 * max(1.0, abs(end))
        out += [(float(end), closed), (end - inward * step, False), (end + inward * step, True)]
    return out


@pytest.mark.parametrize("cls,name,kind,low,high,low_closed,high_closed,base", ROWS,
                         ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_documented_range(cls, name, kind, low, high, low_closed, high_closed, base):
    P = getattr(sp.sim, cls)
    if cls == "ScreenParams" and name not in ("n_genes", "n_perturbations", "unmeasured_targets",
                                               "n_combinations", "multiplet_rate"):
        base = {"n_genes": 3, "n_perturbations": 2, **base}
    for value, accepted in _probes(kind, low, high, low_closed, high_closed):
        kwargs = dict(base)
        kwargs[name] = value
        if cls == "ScreenParams":
            if name == "unmeasured_targets":
                kwargs["n_perturbations"] = max(int(value), 0) + 1
            if name == "n_combinations":
                n = max(int(value), 0)
                kwargs["n_perturbations"] = n + 2  # (n + 2)(n + 1) / 2 >= n pairs
            if name == "n_genes" and value < 1:
                kwargs["n_perturbations"] = 0
        if cls == "NoiseOnlyParams":
            kwargs["n"] = 100_000  # n > n_train (+ n_controls) is tested in test_sim_validation
            if name == "n_controls":
                kwargs["n_train"] = int(value) + 1 if value >= 1 else 2
        if accepted:
            obj = P(**kwargs)
            assert getattr(obj, name) == pytest.approx(value), (name, value)
        else:
            with pytest.raises(ValueError, match=f"parameter '{name}'"):
                P(**kwargs)


@pytest.mark.parametrize("fn,name,low,kwargs", [
    ("erdos_renyi", "n_genes", 1, {"p": 0.5}),
    ("scale_free", "n_genes", 2, {"m": 1}),
    ("scale_free", "m", 1, {"n_genes": 5}),
])
def test_network_generators_take_their_smallest_sizes(fn, name, low, kwargs):
    f = getattr(sp.sim, fn)
    f(**{**kwargs, name: low}, rng=0)
    with pytest.raises(ValueError, match=f"parameter '{name}'"):
        f(**{**kwargs, name: low - 1}, rng=0)


@pytest.mark.parametrize("G,m", [(2, 1), (5, 1), (5, 4), (9, 3)])
def test_scale_free_gives_each_new_gene_m_regulators(G, m):
    """Documented: 1 <= m < n_genes; each gene after the first m has m distinct regulators,
    all earlier (acyclic), so there are m (G - m) edges."""
    net = sp.sim.scale_free(G, m, rng=1)
    w = net.weights.toarray()
    assert net.n_edges == m * (G - m) == int((w != 0).sum())
    assert (w[:, :m] == 0).all()
    assert ((w != 0).sum(axis=0)[m:] == m).all()
    assert not (np.tril(w) != 0).any()  # edges only from earlier to later genes
    with pytest.raises(ValueError, match="parameter 'm'"):
        sp.sim.scale_free(G, G, rng=0)


@pytest.mark.parametrize("p,edges", [(0.0, 0), (1.0, 30)])
def test_erdos_renyi_at_probabilities_zero_and_one(p, edges):
    """Each ordered pair i != j is an edge with probability p: none at 0, all 6 x 5 at 1."""
    net = sp.sim.erdos_renyi(6, p, rng=0)
    assert net.n_edges == edges == int((net.weights.toarray() != 0).sum())
    assert (np.diag(net.weights.toarray()) == 0).all()
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError, match="parameter 'p'"):
            sp.sim.erdos_renyi(6, bad, rng=0)


@pytest.mark.parametrize("cls", ["ScreenParams", "NoiseOnlyParams", "NetworkParams"])
def test_parameter_sets_are_frozen(cls):
    p = getattr(sp.sim, cls)()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n_controls = 3  # type: ignore[misc]


@pytest.mark.parametrize("P", [2, 3, 5])
def test_multiplets_need_two_perturbations_and_combinations_at_most_the_pairs(P):
    pairs = P * (P - 1) // 2  # distinct pairs of single perturbations
    sp.sim.ScreenParams(n_genes=6, n_perturbations=P, multiplet_rate=0.5, n_combinations=pairs)
    with pytest.raises(ValueError, match="parameter 'n_combinations'.*= " + str(pairs)):
        sp.sim.ScreenParams(n_genes=6, n_perturbations=P, n_combinations=pairs + 1)
    with pytest.raises(ValueError, match="parameter 'multiplet_rate'"):
        sp.sim.ScreenParams(n_genes=6, n_perturbations=1, multiplet_rate=0.01)
    sp.sim.ScreenParams(n_genes=6, n_perturbations=1, multiplet_rate=0.0)


@pytest.mark.parametrize("n,n_train,n_controls,in_train,n_pert_train,n_test", [
    (10, 4, 2, True, 2, 6),
    (10, 4, 2, False, 4, 4),
    (3, 2, 1, True, 1, 1),    # the smallest design: one perturbed training sample, one test
    (3, 1, 1, False, 1, 1),
])
def test_noise_only_counts_of_training_and_test_perturbations(n, n_train, n_controls, in_train, n_pert_train,
                                                             n_test):
    p = sp.sim.NoiseOnlyParams(n=n, n_train=n_train, n_controls=n_controls, controls_in_train=in_train)
    assert (p.n_train_perturbations, p.n_test) == (n_pert_train, n_test)
    data = sp.sim.noise_only(n=n, n_train=n_train, n_controls=n_controls, controls_in_train=in_train, rng=0)
    roles = data.obs["role"].value_counts()
    assert (roles.get("train", 0), roles.get("test", 0), roles.get("control", 0)) == (n_pert_train, n_test,
                                                                                        n_controls)


def test_noise_only_with_two_samples_names_the_missing_test_perturbation():
    with pytest.raises(ValueError, match="parameter 'n' must leave at least one test perturbation"):
        sp.sim.NoiseOnlyParams(n=2, n_train=2, n_controls=1)


def test_network_steady_state_needs_persistent_input():
    sp.sim.NetworkParams(steps=None, input="persistent")
    with pytest.raises(ValueError, match="parameter 'steps'.*input='initial'"):
        sp.sim.NetworkParams(steps=None, input="initial")


def test_network_count_layer_defaults_are_those_of_screen_params():
    """NetworkParams documents its count layer as "as in ScreenParams": same defaults."""
    net, screen = sp.sim.NetworkParams(), sp.sim.ScreenParams()
    for name in ("mean_shape", "mean_scale", "dispersion_a0", "dispersion_a1", "library_loc", "library_sd",
                 "min_mean", "control_label"):
        assert getattr(net, name) == getattr(screen, name), name
