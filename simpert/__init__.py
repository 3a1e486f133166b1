"""simpert: simulated perturbation screens with known truth.

Namespaces (imported lazily)::

    simpert.sim        simulators and the ground truth they carry
    simpert.de         DESeq2-style differential expression, shrinkage, impact
    simpert.predict    reference predictors of known quality and the data split
    simpert.metrics    the field's metrics behind one registry
    simpert.calibrate  metric calibration against predictors of known quality
    simpert.theory     closed forms with Monte Carlo validators
    simpert.pl         figures
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

__all__ = ["sim", "de", "predict", "metrics", "calibrate", "theory", "pl", "__version__"]

_SUBMODULES = {"sim", "de", "predict", "metrics", "calibrate", "theory", "pl"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"simpert.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'simpert' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
