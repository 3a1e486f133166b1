"""The rng conventions every stochastic function follows."""

import numpy as np
import pytest

from simpert._random import as_generator, as_seed_sequence, seed_record, spawn


@pytest.mark.parametrize("rng", [0, np.random.SeedSequence(0)])
def test_int_and_seed_sequence_give_the_same_stream(rng):
    assert as_generator(rng).integers(0, 2**32, 5).tolist() == as_generator(0).integers(0, 2**32, 5).tolist()


def test_generator_is_used_as_is_and_advances():
    gen = np.random.default_rng(1)
    assert as_generator(gen) is gen
    a = as_seed_sequence(gen).generate_state(2).tolist()
    b = as_seed_sequence(gen).generate_state(2).tolist()
    assert a != b


def test_spawn_is_independent_of_how_many_children_are_asked_for():
    few = [s.generate_state(1)[0] for s in spawn(7, 3)]
    many = [s.generate_state(1)[0] for s in spawn(7, 10)]
    assert few == many[:3]
    assert len(set(many)) == 10


def test_seed_record_is_json_friendly():
    rec = seed_record(as_seed_sequence(5).spawn(2)[1])
    assert rec == {"entropy": "5", "spawn_key": [1]}


@pytest.mark.parametrize("bad, exc, match", [
    (-1, ValueError, "parameter 'rng' must be a non-negative integer seed; got -1"),
    ("seed", TypeError, "parameter 'rng' must be None, an int, a numpy SeedSequence or a numpy Generator; got str"),
    (True, TypeError, "got bool"),
])
def test_bad_rng_is_named(bad, exc, match):
    with pytest.raises(exc, match=match):
        as_generator(bad)
