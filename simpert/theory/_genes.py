"""Validation and broadcasting of per-gene inputs (scalars or 1-d arrays)."""

from __future__ import annotations

import numpy as np

from .._validation import fail

__all__ = ["gene_arrays"]


def gene_arrays(positive: tuple = (), **named) -> tuple[np.ndarray, ...]:
    """Return the named inputs as float arrays broadcast to one common 1-d shape.

    Parameters
    ----------
    positive : tuple of str
        Names whose values must be > 0.
    **named
        Scalars or 1-d array-likes (one value per gene).

    Returns
    -------
    tuple of ndarray
        In the order given, each of shape ``(G,)`` (``G = 1`` when all are scalars).
    """
    arrays = []
    for name, value in named.items():
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            fail(name, "a number or a 1-d numeric array (one value per gene)", value)
        if arr.ndim > 1 or not np.all(np.isfinite(arr)):
            fail(name, "a finite number or a finite 1-d numeric array (one value per gene)", value)
        if name in positive and np.any(arr <= 0):
            fail(name, "> 0 (a positive number or array)", value)
        arrays.append(np.atleast_1d(arr))
    sizes = {a.size for a in arrays if a.size != 1}
    if len(sizes) > 1:
        shapes = ", ".join(f"{k}: {np.atleast_1d(np.asarray(v)).size}" for k, v in named.items())
        raise ValueError(f"per-gene inputs must have one common length (or be scalars); got {shapes}")
    g = sizes.pop() if sizes else 1
    return tuple(np.broadcast_to(a, (g,)).astype(float) for a in arrays)
