"""simpert.predict: reference predictors of known quality and the interventional split.

Entry points::

    s = split(adata, test_fraction=0.5, rng=0)
    preds = make(adata, s, ["oracle", "technical_duplicate", "ladder(0.5)", "mean"], rng=0)
    list_predictors()        # names, parameters and descriptions

Profiles are in the observed representation (``simpert._profiles``: mean over cells of
``log1p(1e4 * x / total)``) for count data, and plain sample means of ``X`` for
``noise_only`` and continuous ``var_network`` data.
"""

from ._cells import synthesize_cells
from ._context import Context, representation
from ._expected import expected_cell_profiles, expected_log1p_ratio
from ._make import make
from ._network import NetworkRidge
from ._oracle import expected_profiles
from ._predictors import (
    ControlBaseline,
    Ladder,
    MeanBaseline,
    MedianBaseline,
    Oracle,
    Shuffled,
    SystematicOnly,
    TargetOnly,
    TechnicalDuplicate,
    random_derangement,
)
from ._registry import Predictor, get_predictor, list_predictors, register
from ._split import split
from ._types import Prediction, Predictions, Split

__all__ = [
    "split", "make", "list_predictors", "get_predictor", "register", "Predictor", "Context",
    "Split", "Prediction", "Predictions", "representation", "synthesize_cells",
    "expected_profiles", "expected_log1p_ratio", "expected_cell_profiles", "random_derangement",
    "Oracle", "TechnicalDuplicate", "Ladder", "MeanBaseline", "MedianBaseline", "ControlBaseline",
    "SystematicOnly", "TargetOnly", "Shuffled", "NetworkRidge",
]
