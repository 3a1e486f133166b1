"""``make``: run predictors on a split screen."""

from __future__ import annotations

import dataclasses

from .._random import as_seed_sequence
from .._validation import Instance, Interval, check
from ._context import Context
from ._registry import resolve
from ._split import perturbation_labels
from ._types import Prediction, Predictions, Split

__all__ = ["make"]


def make(adata, split: Split, predictors, *, rng=None, target_sum: float = 1e4, cells: bool = False) -> Predictions:
    """Run predictors of known quality on the held-out perturbations of ``split``.

    Parameters
    ----------
    adata : AnnData
        The screen (cells or pseudobulk counts, or raw ``noise_only`` / continuous
        ``var_network`` data).
    split : Split
        From :func:`simpert.predict.split`.
    predictors : str, Predictor or list of them
        Registered names (``"oracle"``), parametrised names (``"ladder(0.25)"``) or
        :class:`Predictor` objects; see :func:`list_predictors`.
    rng : None, int, SeedSequence or Generator
        Root seed. Each predictor draws from its own stream named after its label, so a
        predictor's output does not depend on which other predictors are asked for.
    target_sum : float, default 1e4
        Normalisation total of the log-normalised profiles.
    cells : bool, default False
        Also return predicted cells (``Prediction.cells``) for DE-based metrics: the
        technical duplicate's redrawn cells, or synthesised cells for profile-only
        predictors (see :func:`simpert.predict.synthesize_cells`).

    Returns
    -------
    Predictions
        Mapping label -> :class:`Prediction` (profiles: test perturbations x genes in the
        observed representation; control: the control profile the predictor assumes).

    Examples
    --------
    >>> s = split(adata, rng=0)                                            # doctest: +SKIP
    >>> preds = make(adata, s, ["oracle", "mean", "ladder(0.5)"], rng=0)   # doctest: +SKIP
    >>> preds["mean"].profiles.shape                                       # doctest: +SKIP
    """
    check("split", split, Instance((Split,), "a Split (from simpert.predict.split)"))
    check("target_sum", target_sum, Interval(0.0, None, closed="neither"))
    check("cells", cells, Instance((bool,), "a bool"))
    preds = resolve(predictors)
    present = set(perturbation_labels(adata, split.control))
    missing = [p for p in list(split.train) + list(split.test) if p not in present]
    if missing:
        raise ValueError(f"parameter 'split' must name perturbations of 'adata'; got {missing[:5]!r} not in it")
    labels = set(adata.obs["perturbation"].astype(str))
    if split.control not in labels:
        raise ValueError(f"parameter 'adata' must hold control cells labelled {split.control!r}; got none")
    if not split.test or not split.train:
        raise ValueError("parameter 'split' must have training and test perturbations; got an empty side")
    ctx = Context(adata, split, target_sum=target_sum, seed=as_seed_sequence(rng))
    out = []
    for pred in preds:
        res = pred.predict(ctx)
        if not isinstance(res, Prediction):
            res = Prediction(pred.label, res, ctx.control)
        elif res.name != pred.label:
            res = dataclasses.replace(res, name=pred.label)
        if cells and res.cells is None:
            res = dataclasses.replace(res, cells=pred.cells(ctx, res))
        out.append(res)
    return Predictions(out)
