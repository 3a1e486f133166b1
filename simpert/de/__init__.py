"""simpert.de: DESeq2-style differential expression, shrinkage and transcriptome-wide impact.

- :func:`deseq`: every perturbation against control from one fit of a one-factor negative
  binomial GLM (native vectorised engine, PyDESeq2 or R DESeq2), with R DESeq2's defaults.
- :class:`DEDataset`: validated counts and design; :class:`DEResults` / :class:`DESummary`.
- :func:`ash`: adaptive shrinkage of effect estimates (mix-SQP: :func:`mixsqp`).
- :func:`impact`, :func:`impact_table`: transcriptome-wide impact per perturbation.
- :func:`wilcoxon`: cell-level Wilcoxon DE as cell-eval computes it.
"""

from ._ash import AshPrior, AshResult, ash
from ._dataset import DEDataset
from ._deseq import deseq
from ._impact import ImpactResult, impact, impact_table
from ._mixsqp import MixSQPResult, mixsqp
from ._results import DEResults, DESummary
from ._wilcoxon import wilcoxon

__all__ = [
    "deseq",
    "DEDataset",
    "DEResults",
    "DESummary",
    "ash",
    "AshResult",
    "AshPrior",
    "mixsqp",
    "MixSQPResult",
    "impact",
    "impact_table",
    "ImpactResult",
    "wilcoxon",
]
