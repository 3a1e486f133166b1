"""What the predictors of one :func:`simpert.predict.make` call share."""

from __future__ import annotations

import zlib
from functools import cached_property

import numpy as np
import pandas as pd

from .._profiles import group_profiles, representation
from ._types import Split

__all__ = ["Context", "representation"]


def _meta(adata) -> dict:
    uns = getattr(adata, "uns", None)
    if uns is None or "simpert" not in uns:
        return {}
    rec = uns["simpert"]
    return rec if hasattr(rec, "get") else {}


class Context:
    """Observed data, truth and seeds shared by the predictors of one ``make`` call.

    Parameters
    ----------
    adata : AnnData
        The screen.
    split : Split
        The interventional split.
    target_sum : float
        Normalisation total of the log-normalised representation.
    seed : numpy.random.SeedSequence
        Root seed; :meth:`rng` derives one stream per key from it.

    Attributes
    ----------
    adata, split, target_sum
        As given.
    representation : str
        ``"lognorm"`` or ``"raw"`` (see :func:`representation`).
    genes : pandas.Index
        Gene names.
    observed : DataFrame
        Observed profile of every group (control and perturbations).
    control : Series
        Observed training-control profile (the default control of every prediction).
    train : DataFrame
        Observed profiles of the training perturbations.
    test : list of str
        Held-out perturbations, the rows of every prediction.
    """

    def __init__(self, adata, split: Split, *, target_sum: float, seed: np.random.SeedSequence):
        self.adata = adata
        self.split = split
        self.target_sum = float(target_sum)
        self._seed = seed
        self.representation = representation(adata)
        self.genes = adata.var_names.copy()
        self.observed = group_profiles(adata, "perturbation", target_sum=self.target_sum, kind=self.representation)
        self.observed.index = self.observed.index.astype(str)
        self.control = self.observed.loc[split.control].rename(split.control)
        self.train = self.observed.loc[list(split.train)]
        self.test = list(split.test)
        self._cache: dict = {}

    # -- randomness -------------------------------------------------------------------
    def seed(self, key: str) -> np.random.SeedSequence:
        """A child SeedSequence of the root seed named by ``key`` (stable across runs)."""
        tag = zlib.crc32(key.encode("utf-8"))
        return np.random.SeedSequence(self._seed.entropy, spawn_key=tuple(self._seed.spawn_key) + (tag,))

    def rng(self, key: str) -> np.random.Generator:
        """A Generator for the stream named ``key``."""
        return np.random.default_rng(self.seed(key))

    # -- truth --------------------------------------------------------------------------
    @cached_property
    def meta(self) -> dict:
        """``adata.uns['simpert']`` (empty dict when absent)."""
        return _meta(self.adata)

    @cached_property
    def truth(self) -> dict:
        """``adata.uns['simpert']['truth']``; a ValueError names what is missing."""
        tr = self.meta.get("truth")
        if tr is None:
            raise ValueError(
                "parameter 'adata' must carry the simulation truth (adata.uns['simpert']['truth']) "
                "for this predictor; got an AnnData without it"
            )
        return tr

    def target_of(self, perts) -> np.ndarray:
        """Column index of the target gene of each perturbation (-1 when unknown)."""
        lookup = {}
        tr = self.meta.get("truth")
        if tr is not None and "perturbations" in tr and "targets" in tr:
            for p, t in zip(np.asarray(tr["perturbations"], dtype=object).astype(str), np.asarray(tr["targets"], dtype=object).astype(str)):
                lookup[p] = t
        elif "target" in self.adata.obs:
            obs = self.adata.obs
            firsts = obs.drop_duplicates("perturbation")
            lookup = dict(zip(firsts["perturbation"].astype(str), firsts["target"].astype(str)))
        pos = pd.Series(np.arange(len(self.genes)), index=self.genes.astype(str))
        out = np.full(len(perts), -1, dtype=np.int64)
        for i, p in enumerate(perts):
            t = lookup.get(str(p), "")
            if t in pos.index:
                out[i] = int(pos[t])
        return out

    def cached(self, key: str, fn):
        """Compute ``fn()`` once per context (shared by predictors)."""
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]
