"""cell-eval's profile metrics (Arc Institute, cell-eval 0.8.x; the Virtual Cell Challenge).

Definitions follow ``cell_eval.metrics._anndata``: profiles are means of log-normalised
expression, deltas are taken against each side's own control (the prediction's control
for the prediction), errors are means over genes, and the discrimination score ranks the
distance of a predicted delta to every observed delta.

Deliberate differences: (1) in the discrimination score, ties between the distance to
the right perturbation and another one count one half (cell-eval's ``np.argsort`` leaves
the order of tied entries to the sorting algorithm); (2) the targeted gene is identified
by the screen's truth (``targets``) rather than by a gene whose name equals the
perturbation's name; (3) the options ``target`` and ``reference`` generalise cell-eval's
fixed choices (target excluded one-sided in PDS only; deltas against control).
"""

from __future__ import annotations

import numpy as np

from ._distance import own_ranks
from ._registry import Metric, register
from ._stats import row_mean, row_pearson

__all__ = [
    "pearson_delta",
    "mse",
    "mae",
    "mse_delta",
    "mae_delta",
    "discrimination_score",
]


def pearson_delta(inp) -> np.ndarray:
    """Pearson correlation of predicted and observed deltas over genes."""
    return row_pearson(inp.delta_pred, inp.delta_real, inp.gene_mask)


def mse(inp) -> np.ndarray:
    """Mean over genes of the squared error of the profiles (no control involved)."""
    return row_mean((inp.pred - inp.real) ** 2, inp.gene_mask)


def mae(inp) -> np.ndarray:
    """Mean over genes of the absolute error of the profiles."""
    return row_mean(np.abs(inp.pred - inp.real), inp.gene_mask)


def mse_delta(inp) -> np.ndarray:
    """Mean squared error of the deltas."""
    return row_mean((inp.delta_pred - inp.delta_real) ** 2, inp.gene_mask)


def mae_delta(inp) -> np.ndarray:
    """Mean absolute error of the deltas."""
    return row_mean(np.abs(inp.delta_pred - inp.delta_real), inp.gene_mask)


def discrimination_score(inp, metric: str = "l1") -> np.ndarray:
    """Perturbation discrimination score (PDS).

    For each test perturbation p, the distances from its predicted delta to the observed
    delta of every test perturbation q (p included) are sorted; with ``rank_p`` the
    0-based position of q = p, ``PDS_p = 1 - rank_p / N``. 1 is best; a constant
    prediction scores ``(N + 1) / (2N)`` on average when no gene is excluded.
    """
    at, bt = inp.cross_targets()
    # blockwise: chunk_size x N distances at a time, never the N x N matrix
    ranks = own_ranks(inp.delta_pred, inp.delta_real, metric, a_targets=at, b_targets=bt,
                      chunk_size=inp.option("chunk_size"))
    return 1.0 - ranks / inp.delta_real.shape[0]


def _pds(metric):
    def fn(inp):
        return discrimination_score(inp, metric)

    fn.__name__ = f"discrimination_score_{metric}"
    fn.__doc__ = f"Perturbation discrimination score with the {metric} distance."
    return fn


_CE = "cell-eval"
for _name, _fn, _hib, _best, _desc in [
    ("pearson_delta", pearson_delta, True, 1.0, "Pearson correlation of predicted and observed deltas"),
    ("mse", mse, False, 0.0, "mean squared error of the profiles"),
    ("mae", mae, False, 0.0, "mean absolute error of the profiles"),
    ("mse_delta", mse_delta, False, 0.0, "mean squared error of the deltas"),
    ("mae_delta", mae_delta, False, 0.0, "mean absolute error of the deltas"),
]:
    register(Metric(_name, _fn, _hib, _best, frozenset({"profiles"}), _desc, _CE,
                    target="include", reference="control" if "delta" in _name else None),
             overwrite=True)

for _m in ("l1", "l2", "cosine"):
    register(
        Metric(
            f"discrimination_score_{_m}", _pds(_m), True, 1.0, frozenset({"profiles"}),
            f"perturbation discrimination score (PDS), {_m} distance between deltas", _CE,
            target="exclude", reference="control",
        ),
        overwrite=True,
    )
