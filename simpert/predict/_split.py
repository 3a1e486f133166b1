"""The interventional split: every control in training, perturbations split at random."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._random import as_seed_sequence, seed_record
from .._validation import Instance, Interval, check
from ._types import Split

__all__ = ["split", "control_label", "perturbation_labels"]


def control_label(adata, control: str | None = None) -> str:
    """The control label of ``adata``.

    Parameters
    ----------
    adata : AnnData
        A screen with ``obs['perturbation']``.
    control : str or None
        Explicit label; None reads ``adata.uns['simpert']['control']`` and falls back to
        ``"control"``.

    Returns
    -------
    str
    """
    if control is not None:
        return str(check("control", control, Instance((str,), "a string or None")))
    uns = getattr(adata, "uns", {}) or {}
    meta = uns.get("simpert", {}) if hasattr(uns, "get") else {}
    return str(meta.get("control", "control")) if hasattr(meta, "get") else "control"


def perturbation_labels(adata, control: str) -> list[str]:
    """Non-control perturbation labels present in ``adata``, in category order.

    Parameters
    ----------
    adata : AnnData
        A screen with ``obs['perturbation']``.
    control : str
        The control label.

    Returns
    -------
    list of str
    """
    if not hasattr(adata, "obs") or "perturbation" not in adata.obs:
        raise ValueError("parameter 'adata' must be an AnnData with an obs column 'perturbation'; "
                         f"got {type(adata).__name__} without it")
    cat = pd.Categorical(adata.obs["perturbation"].astype(str) if not isinstance(
        adata.obs["perturbation"].dtype, pd.CategoricalDtype) else adata.obs["perturbation"])
    present = cat.remove_unused_categories().categories
    return [str(p) for p in present if str(p) != control]


def split(adata, *, test_fraction: float = 0.5, rng=None, control: str | None = None) -> Split:
    """Draw an interventional split of a screen's perturbations.

    Every control cell (or sample) stays in training; the non-control perturbations are
    shuffled with ``rng`` and ``round(test_fraction * P)`` of them are held out.

    Parameters
    ----------
    adata : AnnData
        A screen (``simpert.sim.screen``, ``noise_only``, ``var_network`` or a user's data)
        with ``obs['perturbation']``.
    test_fraction : float, default 0.5
        Fraction of perturbations held out, in (0, 1). Both sides must end up with at least
        one perturbation.
    rng : None, int, SeedSequence or Generator
        Seed; the same seed gives the same split.
    control : str, optional
        Control label; by default ``adata.uns['simpert']['control']`` or ``"control"``.

    Returns
    -------
    Split
        ``train`` and ``test`` tuples of perturbation labels, each in the screen's category
        order, the control label, and the seed record.

    Raises
    ------
    ValueError
        For a fraction outside (0, 1), fewer than two perturbations, or a fraction that
        leaves one side empty.

    Examples
    --------
    >>> s = split(adata, test_fraction=0.3, rng=0)   # doctest: +SKIP
    >>> len(s.test)                                   # doctest: +SKIP
    """
    check("test_fraction", test_fraction, Interval(0.0, 1.0, closed="neither"))
    ctrl = control_label(adata, control)
    perts = perturbation_labels(adata, ctrl)
    n = len(perts)
    if n < 2:
        raise ValueError(
            "parameter 'adata' must hold at least 2 non-control perturbations to split; "
            f"got {n} (control label {ctrl!r})"
        )
    n_test = int(round(float(test_fraction) * n))
    if not 1 <= n_test <= n - 1:
        raise ValueError(
            "parameter 'test_fraction' must leave at least one perturbation on each side "
            f"(round(test_fraction * {n}) in [1, {n - 1}]); got {test_fraction!r}"
        )
    ss = as_seed_sequence(rng)
    order = np.random.default_rng(ss).permutation(n)
    is_test = np.zeros(n, dtype=bool)
    is_test[order[:n_test]] = True
    train = tuple(p for p, t in zip(perts, is_test) if not t)
    test = tuple(p for p, t in zip(perts, is_test) if t)
    return Split(train=train, test=test, control=ctrl, seed=seed_record(ss))
