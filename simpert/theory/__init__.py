"""simpert.theory: closed forms for the baselines and the noise-only illusion.

Closed forms for the noise-only correlation illusion (Kernfeld et al., PEREGGRN) and the
bias-variance of the baselines, each derived in its docstring, with Monte Carlo validators
built on :mod:`simpert.sim`:

- :func:`noise_only_rho`, :func:`noise_only_correlation`, :func:`effects_correlation`,
  :func:`expected_sample_correlation`, :func:`effect_moments`;
- :func:`baseline_mse`, :func:`effect_estimator_mse`, :func:`topk_mse`,
  :func:`embedding_error`;
- :func:`validate` (closed form vs Monte Carlo);
- :func:`r_exact`, :func:`pereggrn_r_snippet`, :func:`snippet_distribution` (the PEREGGRN R
  snippet run in R and its design simulated in Python).
"""

from ._bias_variance import (
    BaselineMSE,
    EffectEstimatorMSE,
    EmbeddingError,
    baseline_mse,
    effect_estimator_mse,
    embedding_error,
)
from ._correlation import (
    effect_moments,
    effects_correlation,
    expected_sample_correlation,
    noise_only_correlation,
    noise_only_rho,
)
from ._montecarlo import CLOSED_FORMS, ValidationResult, validate
from ._r_exact import SnippetDistribution, pereggrn_r_snippet, r_exact, snippet_distribution
from ._table import TheorySummary
from ._topk import TopKMSE, loo_count_cdf, topk_mse

__all__ = [
    "noise_only_rho",
    "noise_only_correlation",
    "effects_correlation",
    "effect_moments",
    "expected_sample_correlation",
    "baseline_mse",
    "BaselineMSE",
    "effect_estimator_mse",
    "EffectEstimatorMSE",
    "topk_mse",
    "TopKMSE",
    "loo_count_cdf",
    "embedding_error",
    "EmbeddingError",
    "validate",
    "ValidationResult",
    "CLOSED_FORMS",
    "r_exact",
    "pereggrn_r_snippet",
    "snippet_distribution",
    "SnippetDistribution",
    "TheorySummary",
]
