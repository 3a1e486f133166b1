"""The reference predictors of known quality (all but the network model)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import Interval, OneOf
from ._oracle import expected_profiles, expected_shift_profile
from ._registry import Predictor, register
from ._types import Prediction

__all__ = [
    "Oracle", "TechnicalDuplicate", "Ladder", "MeanBaseline", "MedianBaseline", "ControlBaseline",
    "SystematicOnly", "TargetOnly", "Shuffled", "oracle_profiles",
]


def _frame(ctx, values) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(values, dtype=float), index=pd.Index(ctx.test, name="perturbation"),
                        columns=ctx.genes.copy())


def _repeat(ctx, row: np.ndarray) -> pd.DataFrame:
    return _frame(ctx, np.broadcast_to(np.asarray(row, dtype=float), (len(ctx.test), len(ctx.genes))))


def oracle_profiles(ctx) -> pd.DataFrame:
    """Expected profiles of the test perturbations and of the control (cached per context).

    Returns
    -------
    DataFrame
        Rows: the control label then the test perturbations.
    """
    labels = [ctx.split.control] + list(ctx.test)
    return ctx.cached("oracle", lambda: expected_profiles(ctx, labels))


@register
class Oracle(Predictor):
    """The true expected profile of each test perturbation.

    The expectation of the observed representation itself (mean over cells of log1p of
    normalised counts) given the screen's truth and its cells' recorded size factors,
    escape status and knockdown, computed by quadrature of the negative binomial law
    (``simpert.predict._expected``); for raw data, the true mean of ``X``.

    Parameters
    ----------
    control : {"observed", "expected"}, default "observed"
        The control profile the prediction carries: the observed training controls (as
        every other predictor) or their expected profile.
    """

    name = "oracle"
    needs_truth = True
    _spec = {"control": OneOf(("observed", "expected"))}

    def __init__(self, control: str = "observed"):
        self.control = control

    def predict(self, ctx):
        exp = oracle_profiles(ctx)
        prof = _frame(ctx, exp.loc[ctx.test].to_numpy())
        ctrl = ctx.control if self.control == "observed" else exp.loc[ctx.split.control].rename(ctx.split.control)
        return Prediction(self.label, prof, ctrl)


@register
class TechnicalDuplicate(Predictor):
    """An independent redraw of the screen: same truth, same cells per perturbation, new noise.

    Profiles are those of the redrawn test perturbations; the control profile is that of the
    redrawn controls (an independent replicate experiment has its own controls, so delta
    metrics do not get the observed control noise for free). Cells (when asked) are the
    redrawn cells of the test perturbations and of the controls. Uses
    ``simpert.sim.redraw``.
    """

    name = "technical_duplicate"
    needs_truth = True

    def __init__(self):
        pass

    def _redraw(self, ctx):
        def draw():
            from .. import sim

            if not hasattr(sim, "redraw"):
                raise RuntimeError("technical_duplicate needs simpert.sim.redraw, which this installation lacks")
            return sim.redraw(ctx.adata, rng=ctx.seed("technical_duplicate"))
        return ctx.cached("technical_duplicate:adata", draw)

    def predict(self, ctx):
        from ._context import Context

        dup = self._redraw(ctx)
        dctx = ctx.cached("technical_duplicate:ctx",
                          lambda: Context(dup, ctx.split, target_sum=ctx.target_sum, seed=ctx.seed("dup")))
        prof = _frame(ctx, dctx.observed.loc[ctx.test].to_numpy())
        return Prediction(self.label, prof, dctx.control.rename(ctx.split.control))

    def cells(self, ctx, prediction):
        if ctx.representation == "raw":
            return None
        dup = self._redraw(ctx)
        keep = dup.obs["perturbation"].astype(str).isin([ctx.split.control] + list(ctx.test)).to_numpy()
        out = dup[keep].copy()
        out.obs["perturbation"] = pd.Categorical(out.obs["perturbation"].astype(str),
                                                 categories=[ctx.split.control] + list(ctx.test))
        return out


@register
class Ladder(Predictor):
    """``alpha`` of the way from the mean baseline to the oracle.

    ``control + alpha * (oracle - control) + (1 - alpha) * (mean - control)``, i.e. the
    true delta and the mean-baseline delta, both measured from the control profile the
    prediction carries (the observed training controls), mixed with weight ``alpha``:
    ``ladder(0)`` is the mean baseline and ``ladder(1)`` the oracle, bit for bit (computed
    as ``mean + alpha * (oracle - mean)``, the endpoints returned exactly), and the
    distance to the oracle shrinks linearly in ``alpha``.

    Parameters
    ----------
    alpha : float in [0, 1]
    """

    name = "ladder"
    needs_truth = True
    _spec = {"alpha": Interval(0.0, 1.0)}

    def __init__(self, alpha: float):
        self.alpha = alpha

    def predict(self, ctx):
        a = float(self.alpha)
        truth = oracle_profiles(ctx).loc[ctx.test].to_numpy()
        mean = np.broadcast_to(ctx.train.to_numpy().mean(axis=0), truth.shape)
        # mean + a * (truth - mean) is the same mixture (the control cancels); the
        # endpoints are returned exactly so that ladder(0) is bit-identical to "mean" and
        # ladder(1) to "oracle" (rounding noise would otherwise give a constant centred
        # prediction a spurious, non-NaN correlation)
        if a == 0.0:
            return _frame(ctx, mean)
        if a == 1.0:
            return _frame(ctx, truth)
        return _frame(ctx, mean + a * (truth - mean))


@register
class MeanBaseline(Predictor):
    """The mean of the training perturbations' observed profiles, for every test perturbation.

    Unweighted over perturbations (each training perturbation counts once whatever its cell
    count); controls are not included.
    """

    name = "mean"

    def __init__(self):
        pass

    def predict(self, ctx):
        return _repeat(ctx, ctx.train.to_numpy().mean(axis=0))


@register
class MedianBaseline(Predictor):
    """The gene-wise median of the training perturbations' observed profiles."""

    name = "median"

    def __init__(self):
        pass

    def predict(self, ctx):
        return _repeat(ctx, np.median(ctx.train.to_numpy(), axis=0))


@register
class ControlBaseline(Predictor):
    """No change: the observed training-control profile for every test perturbation."""

    name = "control"

    def __init__(self):
        pass

    def predict(self, ctx):
        return _repeat(ctx, ctx.control.to_numpy())


@register
class SystematicOnly(Predictor):
    """The control profile plus the true shared (systematic) response, identical for all.

    ``control + E[profile of control cells shifted by the shared log2 response]
    - E[profile of control cells]``: the expected change the shared response alone causes in
    the observed representation. Zero shift (B = 0) gives the control baseline.
    """

    name = "systematic_only"
    needs_truth = True

    def __init__(self):
        pass

    def predict(self, ctx):
        if ctx.representation == "raw":
            return _repeat(ctx, ctx.control.to_numpy())
        shared = np.asarray(ctx.truth["shared_log2fc"], dtype=float).reshape(-1)
        base = oracle_profiles(ctx).loc[ctx.split.control].to_numpy()
        shifted = ctx.cached("systematic_only", lambda: expected_shift_profile(ctx, shared)).to_numpy()
        return _repeat(ctx, ctx.control.to_numpy() + (shifted - base))


@register
class TargetOnly(Predictor):
    """The control profile with only each perturbation's target gene changed (a reward hacker).

    The target gene takes the oracle's value (``source="oracle"``) or its observed value in
    the held-out perturbation (``source="observed"``, PEREGGRN's revealed target); every other
    gene keeps the control value.

    Parameters
    ----------
    source : {"oracle", "observed"}, default "oracle"
    """

    name = "target_only"
    needs_truth = True
    _spec = {"source": OneOf(("oracle", "observed"))}

    def __init__(self, source: str = "oracle"):
        self.source = source

    def predict(self, ctx):
        out = np.tile(ctx.control.to_numpy(), (len(ctx.test), 1))
        t = ctx.target_of(ctx.test)
        rows = np.flatnonzero(t >= 0)
        ref = oracle_profiles(ctx).loc[ctx.test] if self.source == "oracle" else ctx.observed.loc[ctx.test]
        out[rows, t[rows]] = ref.to_numpy()[rows, t[rows]]
        return _frame(ctx, out)


def random_derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` with no fixed point (``n >= 2``).

    Parameters
    ----------
    n : int
        Length (at least 2).
    rng : numpy.random.Generator
        Randomness; permutations are drawn until one has no fixed point (rejection
        sampling, about e tries on average), so the result is uniform over derangements.

    Returns
    -------
    ndarray of int
    """
    if n < 2:
        raise ValueError(f"parameter 'n' must be at least 2 for a derangement; got {n}")
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


@register
class Shuffled(Predictor):
    """The oracle with labels permuted among the test perturbations (a derangement).

    Each test perturbation gets the true expected profile of another test perturbation
    (uniform random derangement, seeded): right distribution of profiles, wrong assignment.
    Needs at least two test perturbations.
    """

    name = "shuffled"
    needs_truth = True

    def __init__(self):
        pass

    def predict(self, ctx):
        n = len(ctx.test)
        if n < 2:
            raise ValueError(f"parameter 'split' must hold at least 2 test perturbations for 'shuffled'; got {n}")
        perm = random_derangement(n, ctx.rng("shuffled"))
        truth = oracle_profiles(ctx).loc[ctx.test].to_numpy()
        return _frame(ctx, truth[perm])
