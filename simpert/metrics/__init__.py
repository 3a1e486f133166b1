"""simpert.metrics: the field's evaluation metrics behind one registry and one signature.

Every metric is a :class:`Metric` in :data:`registry` whose function takes one
:class:`MetricInput` (profiles, controls, targets, reference point, weights, DE tables and
cells, aligned on test perturbations and genes) and returns one value per test
perturbation. :func:`score` evaluates predictions against a screen and returns a tidy
table; :func:`list_metrics` describes what is available.

Families: cell-eval (pearson_delta, mse, mae, mse_delta, mae_delta,
discrimination_score_l1/l2/cosine, overlap_at_N/K, precision_at_N/K, de_direction_match,
de_spearman_lfc_sig, de_sig_genes_recall, pr_auc, roc_auc, pearson_edistance and
:func:`scaled_score`); PEREGGRN (pereggrn_*); Systema (systema_*, systematic_variation);
Mejia / Miller (wmse, weighted_r2_delta, r2_delta, mse_de, r2_delta_de); PerturBench
(perturbench_rank, perturbench_rank_cosine); Kernfeld (fair_retrieval); cell-eval2's 2026
challenge suite, profile ``vcc2026`` (pds_cosine, expr_mse_unbiased_capped_norm,
de_wilcoxon_direction_fidelity_yield_raw, de_wilcoxon_direction_reach_raw,
de_wilcoxon_sig_jaccard, de_wilcoxon_lfc_nmae; :func:`vcc2026_score` with its anchors).
Named option presets live in :data:`PROFILES`.
"""

from . import _celleval, _de_metrics, _edistance, _pereggrn, _retrieval, _systema, _weighted  # noqa: F401
from ._distance import cross_distances, own_ranks
from ._input import DEFAULT_OPTIONS, CellSet, DETable, MetricInput
from ._registry import Metric, get, list_metrics, register, registry
from ._scaled import scaled_score
from ._score import build_input, score
from ._evaluate import (EVALUATION_PROFILES, ComparisonResult, EvaluationResult, compare, detect_input_type,
                        evaluate, profile_metrics)
from ._weighted import mejia_weights, t_statistics
from ._de_metrics import de_table
from ._profiles import PROFILES, profile
from ._vcc2026 import (
    VCC2026_METRICS,
    Vcc2026Result,
    Vcc2026Score,
    vcc2026_anchors,
    vcc2026_baseline,
    vcc2026_metrics,
    vcc2026_score,
)

__all__ = [
    "evaluate",
    "compare",
    "detect_input_type",
    "EvaluationResult",
    "ComparisonResult",
    "EVALUATION_PROFILES",
    "profile_metrics",
    "Metric",
    "MetricInput",
    "DETable",
    "CellSet",
    "DEFAULT_OPTIONS",
    "registry",
    "register",
    "get",
    "list_metrics",
    "score",
    "build_input",
    "scaled_score",
    "cross_distances",
    "own_ranks",
    "t_statistics",
    "mejia_weights",
    "de_table",
    "PROFILES",
    "profile",
    "VCC2026_METRICS",
    "Vcc2026Result",
    "Vcc2026Score",
    "vcc2026_metrics",
    "vcc2026_baseline",
    "vcc2026_anchors",
    "vcc2026_score",
]
