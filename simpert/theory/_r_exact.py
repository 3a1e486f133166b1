"""The PEREGGRN noise-only R snippet, run in R, and its design simulated in Python.

Kernfeld et al. (PEREGGRN, Genome Biology 2025) illustrate the noise-only illusion with a
100 x 100 standard-normal matrix (rows = samples): row 1 is the single control, rows 1..50
the training set (control included), rows 51..100 test samples, and the statistic is the
mean over test rows of ``cor(colMeans(train) - X[1, ], X[i, ] - X[1, ])``. With
``set.seed(0)`` R prints 0.648667807; over many seeds the statistic averages 0.698
(:func:`simpert.theory.noise_only_correlation` with ``n=50, n_genes=100``), so the
published value is a low draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._random import as_seed_sequence
from .._validation import Integer, Interval, check
from ._correlation import noise_only_correlation
from ._montecarlo import _chunks, _corr, _noise_only_lfc
from ._table import TheorySummary

__all__ = ["pereggrn_r_snippet", "r_exact", "snippet_distribution", "SnippetDistribution"]

_N_SAMPLES, _N_GENES, _N_TRAIN = 100, 100, 50


def pereggrn_r_snippet(seed: int = 0) -> str:
    """R source of the PEREGGRN noise-only illustration.

    Parameters
    ----------
    seed : int, default 0
        Argument of ``set.seed``.

    Returns
    -------
    str
        R code whose value is the mean test-row correlation.
    """
    check("seed", seed, Integer(0))
    return (
        f"set.seed({int(seed)})\n"
        f"X <- matrix(rnorm({_N_SAMPLES} * {_N_GENES}), nrow = {_N_SAMPLES}, ncol = {_N_GENES})\n"
        f"train <- X[1:{_N_TRAIN}, ]\n"
        f"cors <- sapply({_N_TRAIN + 1}:{_N_SAMPLES}, "
        "function(i) cor(colMeans(train) - X[1, ], X[i, ] - X[1, ]))\n"
        "mean(cors)\n"
    )


def r_exact(seed: int = 0) -> float:
    """Run the PEREGGRN R snippet in R (through rpy2) and return its value.

    With ``seed=0`` this returns 0.648667806974..., the value real R prints (the paper
    rounds it to 0.649). The code runs inside ``local()`` so nothing is left in R's global
    environment (R's random-number state does change, as ``set.seed`` does in R).

    Parameters
    ----------
    seed : int, default 0

    Returns
    -------
    float

    Raises
    ------
    ImportError
        When rpy2 (``pip install simpert[r]``) or R is not available.
    """
    code = pereggrn_r_snippet(seed)
    from .._rbridge import robjects

    ro = robjects("r_exact")
    value = ro.r(f"local({{\n{code}}})")
    return float(value[0])


@dataclass(frozen=True)
class SnippetDistribution:
    """Distribution of the snippet's statistic over independent draws of its design.

    Attributes
    ----------
    values : ndarray
        One statistic per simulated 100 x 100 matrix.
    closed_form : float
        Expected value from :func:`noise_only_correlation` (n=50, G=100): 0.69818.
    source : str
        Where the draws came from.
    """

    values: np.ndarray
    closed_form: float
    source: str

    @property
    def mean(self) -> float:
        """Monte Carlo mean of the statistic."""
        return float(self.values.mean())

    @property
    def sd(self) -> float:
        """Spread of the statistic between draws."""
        return float(self.values.std(ddof=1))

    @property
    def se(self) -> float:
        """Standard error of :attr:`mean`."""
        return self.sd / math.sqrt(self.values.size)

    def quantile_of(self, value: float) -> float:
        """Fraction of draws at or below ``value`` (e.g. R's 0.6487 for seed 0)."""
        check("value", value, Interval(-1.0, 1.0))
        return float(np.mean(self.values <= value))

    def summary(self, r_value: float | None = None) -> TheorySummary:
        """Mean, spread and closed form; with ``r_value``, where that draw falls."""
        rows = {"closed form E[mean r]": self.closed_form, "MC mean": self.mean, "MC SE": self.se,
                "SD between draws": self.sd}
        if r_value is not None:
            rows["R value"] = float(r_value)
            rows["quantile of R value"] = self.quantile_of(r_value)
            rows["z of R value"] = (float(r_value) - self.mean) / self.sd
        tab = pd.DataFrame({"value": pd.Series(rows)})
        notes = (f"{self.values.size} draws of the 100 x 100 design from {self.source}",)
        return TheorySummary("PEREGGRN noise-only snippet: one draw vs its distribution", tab, notes)


def snippet_distribution(n_replicates: int = 2000, *, rng=None) -> SnippetDistribution:
    """Simulate the snippet's design many times (Python) to place R's value in context.

    Each replicate is an independent 100-sample x 100-gene standard-normal design (1
    control inside a 50-sample training set, 50 test samples) from
    :func:`simpert.sim.noise_only`; the statistic is the snippet's mean test-row
    correlation. Its expectation is 0.69818 (exact); R's seed-0 draw, 0.6487, sits in the
    lower tail.

    Parameters
    ----------
    n_replicates : int, default 2000
    rng : None, int, SeedSequence or Generator

    Returns
    -------
    SnippetDistribution
    """
    check("n_replicates", n_replicates, Integer(2))
    design = dict(n=_N_TRAIN, n_controls=1, m=1, controls_in_train=True)
    n_test = _N_SAMPLES - _N_TRAIN
    vals, source = [], "numpy"
    for size, gen in _chunks(n_replicates, _N_SAMPLES * _N_GENES, as_seed_sequence(rng)):
        (pred, obs), source = _noise_only_lfc(design, size, _N_GENES, n_test, gen)
        vals.append(_corr(pred[:, None, :], obs, "pearson").mean(axis=1))
    cf = noise_only_correlation(_N_TRAIN, 1, 1, n_genes=_N_GENES)
    return SnippetDistribution(np.concatenate(vals), cf, source)
