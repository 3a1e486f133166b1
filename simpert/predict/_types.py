"""The objects that pass from ``simpert.predict`` to ``simpert.metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np
import pandas as pd

__all__ = ["Split", "Prediction", "Predictions"]


@dataclass(frozen=True)
class Split:
    """An interventional split: every control in training, perturbations split.

    Attributes
    ----------
    train : tuple of str
        Training perturbations (controls excluded).
    test : tuple of str
        Held-out perturbations.
    control : str
        The control label.
    seed : dict
        The seed record the split was drawn with.
    """

    train: tuple
    test: tuple
    control: str = "control"
    seed: dict = field(default_factory=dict)

    def __post_init__(self):
        overlap = set(self.train) & set(self.test)
        if overlap:
            raise ValueError(
                "parameter 'test' must not share perturbations with 'train'; "
                f"got {sorted(overlap)[:5]!r} in both"
            )
        if self.control in self.train or self.control in self.test:
            raise ValueError(
                f"parameter 'train'/'test' must not contain the control label {self.control!r}"
            )


@dataclass(frozen=True)
class Prediction:
    """One predictor's output.

    Attributes
    ----------
    name : str
        Predictor name (e.g. ``"mean"`` or ``"ladder(0.5)"``).
    profiles : DataFrame
        Test perturbations x genes, log-normalised profiles (see ``simpert._profiles``).
    control : Series
        The control profile the predictor assumes (genes); by default the observed
        training-control profile.
    cells : AnnData or None
        Predicted cells (counts in ``.X``, ``obs['perturbation']``), for metrics that
        need cells; None when the predictor makes profiles only.
    """

    name: str
    profiles: pd.DataFrame
    control: pd.Series
    cells: object = None

    def __post_init__(self):
        if not isinstance(self.profiles, pd.DataFrame):
            raise TypeError(f"parameter 'profiles' must be a pandas DataFrame; got {type(self.profiles).__name__}")
        if not isinstance(self.control, pd.Series):
            raise TypeError(f"parameter 'control' must be a pandas Series; got {type(self.control).__name__}")
        if not self.profiles.columns.equals(self.control.index):
            raise ValueError("parameter 'control' must be indexed by the same genes as 'profiles' columns")
        if not np.all(np.isfinite(self.profiles.to_numpy(dtype=float))):
            raise ValueError(f"parameter 'profiles' of prediction {self.name!r} must be finite; got NaN or inf")
        if not np.all(np.isfinite(self.control.to_numpy(dtype=float))):
            raise ValueError(f"parameter 'control' of prediction {self.name!r} must be finite; got "
                             f"{int(np.sum(~np.isfinite(self.control.to_numpy(dtype=float))))} NaN or inf value(s)")


class Predictions(Mapping):
    """A read-only mapping predictor name -> :class:`Prediction`."""

    def __init__(self, predictions: Mapping[str, Prediction] | list[Prediction]):
        items = predictions.values() if isinstance(predictions, Mapping) else predictions
        self._data = {}
        for p in items:
            if not isinstance(p, Prediction):
                raise TypeError(f"parameter 'predictions' must hold Prediction objects; got {type(p).__name__}")
            self._data[p.name] = p

    def __getitem__(self, key: str) -> Prediction:
        try:
            return self._data[key]
        except KeyError:
            raise KeyError(f"no prediction named {key!r}; have {list(self._data)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Predictions({list(self._data)})"
