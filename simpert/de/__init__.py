"""simpert.de: DESeq2-style differential expression, shrinkage and transcriptome-wide impact.

- :func:`deseq`: every perturbation against control from one fit of a one-factor negative
  binomial GLM (native vectorised engine, PyDESeq2 or R DESeq2), with R DESeq2's defaults.
- :class:`DEDataset`: validated counts and design; :class:`DEResults` / :class:`DESummary`.
- :func:`ash`: adaptive shrinkage of effect estimates; :func:`impact`: transcriptome-wide
  impact per perturbation; :func:`wilcoxon`: cell-level Wilcoxon DE as cell-eval computes it.
"""

from ._dataset import DEDataset
from ._deseq import deseq
from ._results import DEResults, DESummary

__all__ = ["deseq", "DEDataset", "DEResults", "DESummary"]

try:  # modules maintained alongside; re-exported when present
    from ._ash import AshResult, ash

    __all__ += ["ash", "AshResult"]
except ImportError:  # pragma: no cover
    pass
try:
    from ._impact import impact

    __all__ += ["impact"]
except ImportError:  # pragma: no cover
    pass
try:
    from ._wilcoxon import wilcoxon

    __all__ += ["wilcoxon"]
except ImportError:  # pragma: no cover
    pass
