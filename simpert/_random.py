"""Random-number conventions: every stochastic function takes ``rng``.

``rng`` may be None, an int, a :class:`numpy.random.SeedSequence` or a
:class:`numpy.random.Generator`. Parallel work spawns child seed sequences with
:func:`spawn`, so results never depend on the number of workers.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["RNGLike", "as_generator", "as_seed_sequence", "spawn", "seed_record"]

RNGLike = "None | int | numpy.random.SeedSequence | numpy.random.Generator"


def as_seed_sequence(rng, *, name: str = "rng") -> np.random.SeedSequence:
    """Return a SeedSequence for ``rng``.

    A Generator is turned into a SeedSequence by drawing 128 bits from it (so the
    Generator advances, as any use of it would).
    """
    if rng is None:
        return np.random.SeedSequence()
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"parameter {name!r} must be a non-negative integer seed; got {rng!r}")
        return np.random.SeedSequence(int(rng))
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(rng.integers(0, 2**63, size=2).tolist())
    raise TypeError(
        f"parameter {name!r} must be None, an int, a numpy SeedSequence or a numpy Generator; "
        f"got {type(rng).__name__}"
    )


def as_generator(rng, *, name: str = "rng") -> np.random.Generator:
    """Return a Generator for ``rng`` (a Generator is returned as is)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(as_seed_sequence(rng, name=name))


def spawn(rng, n: int, *, name: str = "rng") -> list[np.random.SeedSequence]:
    """Return ``n`` independent child SeedSequences of ``rng``."""
    return as_seed_sequence(rng, name=name).spawn(int(n))


def seed_record(ss: np.random.SeedSequence) -> dict:
    """A JSON-friendly description of a SeedSequence (entropy as a decimal string)."""
    ent = ss.entropy
    if isinstance(ent, (list, tuple)) or hasattr(ent, "__len__"):
        ent = "-".join(str(int(e)) for e in ent)
    return {"entropy": str(ent), "spawn_key": [int(k) for k in ss.spawn_key]}
