"""Named option presets ("profiles") that reproduce an evaluation tool's conventions.

A profile fixes every choice that decides a metric's value besides the data: the
normalisation, the control each side is measured against, target-gene handling, the DE
test, its gates and thresholds, the anchors of the score. Each entry names its source and
the version whose definitions it reproduces. :func:`profile` returns one preset, with
optional overrides checked against the preset's keys.

Profiles
--------
``vcc2026``
    cell-eval2 0.20.0's 2026 challenge suite (``configs/vcc2026.yaml`` and the ``vcc2026``
    entries of ``catalog.py``): six metrics on raw counts; Wilcoxon DE on counts per
    million (1e6) against the real control, genes gated at mean > 5 CPM in the control,
    Benjamini-Hochberg within each perturbation after the gate, alpha 0.05, log2 fold
    change with epsilon 1e-9; expression profiles summed per group, normalised to 5e4 and
    log1p-transformed; every perturbation's own target gene excluded (the whole panel's
    target genes in ``pds_cosine``); score ``(u - b) / (r - b)`` against the mean-response
    baseline and the 5-split half-replicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["PROFILES", "profile"]

_VCC2026 = MappingProxyType(
    {
        "source": "cell-eval2",
        "source_version": "0.20.0",
        "metrics": (
            "pds_cosine",
            "expr_mse_unbiased_capped_norm",
            "de_wilcoxon_direction_fidelity_yield_raw",
            "de_wilcoxon_direction_reach_raw",
            "de_wilcoxon_sig_jaccard",
            "de_wilcoxon_lfc_nmae",
        ),
        "input": "counts",  # raw counts on both sides (profiles sum counts per group)
        "allow_fractional_counts": False,  # a prediction must hold integer counts too
        "max_counts_per_cell": 1e6,  # larger cell totals are refused (not counts of one cell)
        "control_source": "real",  # the real control is the origin of both sides
        # expression profiles (pds_cosine, expr_mse_unbiased_capped_norm)
        "profile_target_sum": 5e4,  # log1p(TS * group sum / group total)
        "target": "exclude",  # each row drops its own target gene; PDS drops the panel's
        "pds_rank_denominator": "n-1",
        "pds_ties": "midrank",
        "pred_correction_cap": 1.0,  # min(C_pred, k * C_real)
        # differential expression (the four de_wilcoxon_* metrics)
        "de_test": "wilcoxon",  # two-sided rank-sum, normal approximation, tie + continuity
        "de_target_sum": 1e6,  # counts per million
        "de_min_control_cpm": 5.0,  # genes kept iff mean CPM in the control > 5
        "fdr": 0.05,  # significant iff BH-adjusted p < fdr (per perturbation, after the gate)
        "lfc_epsilon": 1e-9,  # log2((mean_pert + eps) / (mean_ctrl + eps)), arithmetic CPM means
        "reach_purity_floor": 0.9,
        "lfc_nmae_min_gate": 10,
        # anchors of the score s = (u - b) / (r - b)
        "anchor_splits": 5,
        "anchor_base_seed": 0,  # split seeds: SeedSequence(base).generate_state(n_splits)
        "baseline_seed": 0,  # dispersed emission of the mean-response baseline
        "baseline_exclude_target": True,
    }
)

#: Mapping profile name -> read-only mapping of options.
PROFILES: Mapping[str, Mapping] = MappingProxyType({"vcc2026": _VCC2026})


def profile(name: str, overrides: Mapping | None = None) -> Mapping:
    """Return the options of profile ``name``, optionally with some values replaced.

    Parameters
    ----------
    name : str
        A key of :data:`PROFILES`.
    overrides : mapping, optional
        Option values replacing the preset's; every key must be an option of the preset.

    Returns
    -------
    mapping
        Read-only mapping of option name -> value.

    Raises
    ------
    ValueError
        When ``name`` is not a profile or an override names an unknown option.
    """
    if not isinstance(name, str) or name not in PROFILES:
        raise ValueError(f"parameter 'profile' must be one of {sorted(PROFILES)}; got {name!r}")
    base = PROFILES[name]
    if not overrides:
        return base
    if not isinstance(overrides, Mapping):
        raise TypeError(
            f"parameter 'options' must be a mapping of option name -> value; got {type(overrides).__name__}"
        )
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ValueError(
            f"parameter 'options' must use options of profile {name!r} ({', '.join(sorted(base))}); got {unknown}"
        )
    return MappingProxyType({**base, **overrides})
