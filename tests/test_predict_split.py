"""The interventional split: seeded, disjoint, controls in training, clear errors."""

import numpy as np
import pytest

import simpert.sim as sim
from simpert.predict import Split, split


@pytest.fixture(scope="module")
def screen():
    return sim.screen(n_genes=60, n_perturbations=20, n_control_cells=30, cells_per_perturbation=5,
                      cell_count_dispersion=0.0, rng=3)


def test_same_seed_same_split_and_different_seed_differs(screen):
    a, b = split(screen, rng=7), split(screen, rng=7)
    assert a == b
    others = {split(screen, rng=s).test for s in range(8)}
    assert len(others) > 1


def test_disjoint_complete_and_controls_in_training(screen):
    s = split(screen, test_fraction=0.3, rng=1)
    perts = [p for p in screen.obs["perturbation"].cat.categories if p != "control"]
    assert set(s.train).isdisjoint(s.test)
    assert sorted(s.train + s.test) == sorted(perts)
    assert len(s.test) == round(0.3 * len(perts))
    assert s.control == "control" and "control" not in s.train + s.test
    # category order is kept on each side
    order = {p: i for i, p in enumerate(perts)}
    assert list(s.test) == sorted(s.test, key=order.get)
    assert s.seed["entropy"] == "1"


def test_every_perturbation_is_held_out_by_some_seed(screen):
    seen = set()
    for seed in range(40):
        seen |= set(split(screen, rng=seed).test)
    assert len(seen) == 20


def test_generator_and_seedsequence_accepted(screen):
    s1 = split(screen, rng=np.random.SeedSequence(5))
    s2 = split(screen, rng=5)
    assert s1.test == s2.test
    split(screen, rng=np.random.default_rng(0))


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_bad_fraction_message(screen, frac):
    with pytest.raises(ValueError, match=r"parameter 'test_fraction' must be a number in \(0, 1\); got"):
        split(screen, test_fraction=frac)


def test_fraction_leaving_a_side_empty(screen):
    with pytest.raises(ValueError, match=r"parameter 'test_fraction' must leave at least one perturbation"):
        split(screen, test_fraction=0.01)
    with pytest.raises(ValueError, match=r"parameter 'test_fraction' must leave at least one perturbation"):
        split(screen, test_fraction=0.99)


def test_too_few_perturbations():
    one = sim.screen(n_genes=20, n_perturbations=1, n_control_cells=10, cells_per_perturbation=4, rng=0)
    with pytest.raises(ValueError, match=r"at least 2 non-control perturbations to split; got 1"):
        split(one)


def test_non_string_fraction_and_missing_column(screen):
    with pytest.raises(ValueError, match="parameter 'test_fraction'"):
        split(screen, test_fraction="half")
    bare = screen.copy()
    del bare.obs["perturbation"]
    with pytest.raises(ValueError, match="obs column 'perturbation'"):
        split(bare)


def test_split_object_rejects_overlap():
    with pytest.raises(ValueError, match="must not share perturbations"):
        Split(train=("a", "b"), test=("b",))


def test_noise_only_split():
    data = sim.noise_only(n=40, n_genes=10, n_train=20, rng=0)
    s = split(data, test_fraction=0.5, rng=0)
    assert len(s.train) + len(s.test) == 39
    assert s.control == "control"
