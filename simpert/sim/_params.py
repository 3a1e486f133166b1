"""Frozen, validated parameter objects of the simulators.

Each object stores parameters only; :meth:`to_dict` gives an h5ad-safe dictionary (no None,
tuples as arrays) that the simulators keep in ``adata.uns["simpert"]["params"]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .._validation import ArrayLike, Instance, Integer, Interval, OneOf, check, check_params

__all__ = ["ScreenParams", "NoiseOnlyParams", "NetworkParams", "MODALITIES", "DOSE_RESPONSES", "INTERACTIONS"]

MODALITIES = ("crispri", "ko", "crispra")
#: Dose-response forms of :class:`ScreenParams` (``dose_response``).
DOSE_RESPONSES = ("none", "hill")
#: Genetic-interaction models of double perturbations (``interaction``).
INTERACTIONS = ("additive", "synergistic", "buffering", "epistatic", "mixed")


def _h5ad_safe(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        arr = np.asarray(value)
        return arr
    if isinstance(value, dict):
        return {k: _h5ad_safe(v) for k, v in value.items() if v is not None}
    return value


class _ParamsMixin:
    """Shared helpers: ``to_dict``, ``replace`` and construction from a stored dict."""

    def to_dict(self) -> dict:
        """Return the fields as an h5ad-safe dict (None dropped, sequences as arrays).

        Returns
        -------
        dict
            Field name to value.
        """
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            out[f.name] = _h5ad_safe(v)
        return out

    def replace(self, **changes):
        """Return a copy with ``changes`` applied (validated again).

        Parameters
        ----------
        **changes
            Field name to new value.

        Returns
        -------
        same type as self
        """
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            name = sorted(unknown)[0]
            raise TypeError(
                f"parameter {name!r} must be one of the fields of {type(self).__name__} "
                f"({', '.join(f.name for f in fields(self))}); got {name!r}"
            )
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict):
        """Build the object from a dict such as one stored by :meth:`to_dict`.

        Parameters
        ----------
        values : dict
            Field name to value; unknown keys raise TypeError.

        Returns
        -------
        instance of cls
        """
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            name = sorted(unknown)[0]
            raise TypeError(
                f"parameter {name!r} must be one of the fields of {cls.__name__}; got {name!r}"
            )
        clean = {}
        for k, v in values.items():
            if isinstance(v, np.ndarray):
                v = tuple(v.tolist()) if v.ndim else v.item()
            elif isinstance(v, np.generic):
                v = v.item()
            clean[k] = v
        return cls(**clean)


def _as_tuple(obj, name: str, *, low: float | None = None, strict: bool = False, length: int | None = None):
    value = getattr(obj, name)
    if value is None:
        return
    check(name, value, ArrayLike(ndim=1, low=low, strict=strict))
    arr = np.asarray(value, dtype=float)
    if length is not None and arr.shape[0] != length:
        raise ValueError(
            f"parameter {name!r} must have length n_genes = {length}; got length {arr.shape[0]}"
        )
    object.__setattr__(obj, name, tuple(float(v) for v in arr))


@dataclass(frozen=True)
class ScreenParams(_ParamsMixin):
    """Parameters of the count-level perturbation screen (:func:`simpert.sim.screen`).

    Model (per cell ``c`` of perturbation ``p``, gene ``g``; counts are negative binomial
    drawn as Poisson(Gamma))::

        mean    = s_c * base_mean_g * 2^(rep_{r(c), g}) * 2^(B d_g * perturbed_c)
                  * [escaped_c ? 1 : 2^(e_pg) * target factor of the cell's guide]
        var     = mean + dispersion_g * mean^2,  dispersion_g = a0 + a1 / base_mean_g

    The shared (systematic) response is on the log scale: every perturbed cell (escapers
    included) is shifted by ``B * d_g`` log2 units, ``d_g ~ N(0, systematic_sd^2)``: the
    log-scale form of Mejia et al.'s ``mu_c + B (mu_pert - mu_c)``.

    Attributes
    ----------
    n_genes : int, default 2000
        Number of genes G.
    n_perturbations : int, default 50
        Number of perturbations P; each targets a distinct gene.
    unmeasured_targets : int, default 0
        How many of the perturbations target a gene that is not among the measured genes
        (as in genome-wide screens, where many targets are not among the genes kept): they
        have specific effects but no knockdown column; they are named ``u00000``, ...
    n_control_cells : int, default 500
        Number of control (non-targeting) cells.
    cells_per_perturbation : float, default 100
        Mean number of cells per perturbation.
    cell_count_dispersion : float, default 0.1
        Negative binomial dispersion of the number of cells per perturbation (0, or below
        1e-10: every perturbation gets ``round(cells_per_perturbation)`` cells).
    min_cells : int, default 3
        Lower bound on the cells per perturbation.
    n_replicates : int, default 1
        Biological replicates; cells are assigned to them in turn (balanced).
    replicate_sd : float, default 0.1
        SD of the per replicate x gene log2 expression offsets (used when n_replicates > 1).
    mean_shape, mean_scale : float, default 0.5, 2.0
        Gamma law of the base means (expected count per gene at size factor 1).
    gene_means : tuple of float or None
        User-supplied base means (length n_genes); overrides the gamma law.
    min_mean : float, default 1e-3
        Lower bound applied to the base means.
    dispersion_a0, dispersion_a1 : float, default 0.1, 0.2
        Dispersion trend ``a0 + a1 / base_mean``; each in [0, 1000] (beyond, almost every
        count would be 0).
    dispersion_sd : float, default 0.0
        SD of a log-normal scatter of the dispersions around the trend.
    library_loc, library_sd : float, default 0.0, 0.2
        Size factors ``s_c = exp(N(library_loc, library_sd^2))``.
    modality : {"crispri", "ko", "crispra"}, default "crispri"
        CRISPRi: target mean times ``1 - k``. KO: the target is edited with probability
        ``k`` and then kept at ``ko_residual`` of its mean. CRISPRa: target mean times
        ``1 + k (activation_fold - 1)``. ``k`` is the guide's efficiency.
    n_guides : int, default 2
        Guides per target.
    efficiency_a, efficiency_b : float, default 6.0, 3.0
        Beta law of guide efficiencies.
    escape_rate : float, default 0.1
        Probability that a cell carries the guide but shows neither knockdown nor specific
        effects (the shared response still applies).
    ko_residual : float, default 0.1
        Fraction of the target's expression left in an edited cell (KO).
    activation_fold : float, default 4.0
        Fold change of a fully efficient CRISPRa guide.
    p_effect : float, default 0.05
        Probability that a perturbation changes a (non-target) gene.
    effect_size : float, default 1.0
        Median absolute log2 fold change of a specific effect.
    effect_sd : float, default 0.5
        SD of log(|log2 fold change|) of specific effects (log-normal magnitude).
    systematic_strength : float, default 0.0
        Strength B of the shared systematic response.
    systematic_sd : float, default 0.5
        SD of the log2 shared-response direction d (at B = 1).
    systematic_direction : tuple of float or None
        User-supplied direction d (length n_genes) in log2 units.
    control_label : str, default "control"
        Label of control cells.
    dose_response : {"none", "hill"}, default "none"
        How a cell's downstream (specific and program) effects scale with the knockdown
        fraction ``k`` it achieved (its ``knockdown``: the guide's efficiency for CRISPRi and
        CRISPRa, ``1 - ko_residual`` in an edited KO cell, 0 in an unedited or escaped one).
        "none": every non-escaped cell gets the full effects (escapers none). "hill": the
        effects are multiplied by ``r(k) = k^h / (k^h + K^h) * (1 + K^h)``, with
        ``r(0) = 0`` and ``r(1) = 1``, ``h = hill_coefficient``, ``K = hill_half``.
    hill_coefficient : float, default 2.0
        Hill coefficient ``h`` (> 0) of ``dose_response="hill"``.
    hill_half : float, default 0.5
        Half-saturation knockdown ``K`` (> 0) of ``dose_response="hill"``.
    n_programs : int, default 0
        Latent expression programs (cell-cycle-like, stress-like). Program ``j`` loads on
        each gene with probability ``program_density``, with a ``N(0, 1)`` loading
        ``L_jg``; every cell has an activity ``a_cj ~ N(0, program_sd^2)`` and its log2
        means move by ``sum_j a_cj L_jg``, so the genes of a program are correlated.
    program_density : float, default 0.1
        Fraction of genes loading on each program.
    program_sd : float, default 0.5
        SD of the per-cell program activity (log2 units per unit loading).
    program_shift_sd : float, default 0.0
        SD of each perturbation's mean shift ``m_pj ~ N(0, program_shift_sd^2)`` of program
        activity in its non-escaped cells: a response shared by all the genes of a program,
        ``sum_j m_pj L_jg``, part of the perturbation's specific effects (and scaled by the
        dose response like them).
    n_batches : int, default 1
        Batches (GEM groups): each cell is put in one uniformly at random (obs ``batch``,
        categorical ``b0``, ``b1``, ...) and its log2 means move by the batch's offset.
    batch_sd : float, default 0.1
        SD of the per batch x gene log2 offsets (used when n_batches > 1).
    no_guide_rate : float, default 0.0
        Probability that a cell labelled with a perturbation carries no guide at all: no
        knockdown, no specific effects, no shared response (a control cell under a
        perturbation's label; obs ``n_guides`` 0).
    multiplet_rate : float, default 0.0
        Probability that a perturbed cell with a guide carries a second one (high MOI or a
        doublet), of another perturbation drawn uniformly, with one of its guides drawn
        uniformly. The cell keeps its first label (obs ``perturbation``) and is flagged
        (obs ``n_guides`` 2, ``second_perturbation``, ``second_guide``,
        ``second_knockdown``); it gets both knockdowns and the sum of both perturbations'
        log2 specific effects (each scaled by its own dose response). The two guides escape
        together. Multiplets make up ``(1 - no_guide_rate) * multiplet_rate`` of the
        perturbed cells; control cells carry one non-targeting guide.
    n_combinations : int, default 0
        Double perturbations, labelled ``"A+B"`` (GEARS style) after the singles: distinct
        pairs of single perturbations drawn uniformly; each cell carries one guide of A and
        one of B (both knockdowns) and the double's log2 specific effect on gene g is
        ``c_A a_g + c_B b_g`` (``a``, ``b`` the singles' effects, each scaled by its own dose
        response), so the genetic interaction is ``(c_A - 1) a_g + (c_B - 1) b_g``.
        Cells per double follow the singles' law; combination cells are never multiplets.
    interaction : {"additive", "synergistic", "buffering", "epistatic", "mixed"}, default "additive"
        The interaction model, with ``s = interaction_strength``: additive ``c = (1, 1)``
        (interaction 0); synergistic ``(1 + s, 1 + s)`` (in the direction of a + b);
        buffering ``(1 - s, 1 - s)`` (toward 0); epistatic ``(1, 0)`` or ``(0, 1)`` (the
        double equals the dominant single, drawn uniformly); mixed: each double's type
        drawn uniformly from the four.
    interaction_strength : float, default 0.5
        ``s`` in [0, 1].
    n_contexts : int, default 1
        Cell contexts (cell lines, cell types): each cell is put in one uniformly at random
        (obs ``context``, categorical ``c0``, ``c1``, ...). A context has its own log2
        baseline offsets per gene and its own version of every perturbation's effects:
        ``sqrt(rho) a + sqrt(1 - rho) a'_c``, with ``a`` the perturbation's effects and
        ``a'_c`` context-specific sparse effects drawn from the same law (``p_effect``,
        ``effect_size``, ``effect_sd``), so the effects of a perturbation in two contexts
        correlate at ``rho = context_shared`` (without program shifts, whose part of ``a``
        has no counterpart in ``a'_c``). Doubles combine their singles' context versions.
    context_shared : float, default 1.0
        Fraction ``rho`` in [0, 1] of the effects' variance shared across contexts.
    context_sd : float, default 0.5
        SD of the per context x gene log2 baseline offsets (used when n_contexts > 1).
    """

    n_genes: int = 2000
    n_perturbations: int = 50
    unmeasured_targets: int = 0
    n_control_cells: int = 500
    cells_per_perturbation: float = 100.0
    cell_count_dispersion: float = 0.1
    min_cells: int = 3
    n_replicates: int = 1
    replicate_sd: float = 0.1
    mean_shape: float = 0.5
    mean_scale: float = 2.0
    gene_means: tuple | None = None
    min_mean: float = 1e-3
    dispersion_a0: float = 0.1
    dispersion_a1: float = 0.2
    dispersion_sd: float = 0.0
    library_loc: float = 0.0
    library_sd: float = 0.2
    modality: str = "crispri"
    n_guides: int = 2
    efficiency_a: float = 6.0
    efficiency_b: float = 3.0
    escape_rate: float = 0.1
    ko_residual: float = 0.1
    activation_fold: float = 4.0
    p_effect: float = 0.05
    effect_size: float = 1.0
    effect_sd: float = 0.5
    systematic_strength: float = 0.0
    systematic_sd: float = 0.5
    systematic_direction: tuple | None = None
    control_label: str = "control"
    dose_response: str = "none"
    hill_coefficient: float = 2.0
    hill_half: float = 0.5
    n_programs: int = 0
    program_density: float = 0.1
    program_sd: float = 0.5
    program_shift_sd: float = 0.0
    n_batches: int = 1
    batch_sd: float = 0.1
    no_guide_rate: float = 0.0
    multiplet_rate: float = 0.0
    n_combinations: int = 0
    interaction: str = "additive"
    interaction_strength: float = 0.5
    n_contexts: int = 1
    context_shared: float = 1.0
    context_sd: float = 0.5

    _SPEC = {
        "n_genes": Integer(1),
        "n_perturbations": Integer(0),
        "unmeasured_targets": Integer(0),
        "n_control_cells": Integer(1),
        "cells_per_perturbation": Interval(0, None, "neither"),
        "cell_count_dispersion": Interval(0, None),
        "min_cells": Integer(1),
        "n_replicates": Integer(1),
        "replicate_sd": Interval(0, None),
        "mean_shape": Interval(0, None, "neither"),
        "mean_scale": Interval(0, None, "neither"),
        "min_mean": Interval(0, None, "neither"),
        "dispersion_a0": Interval(0, 1e3),
        "dispersion_a1": Interval(0, 1e3),
        "dispersion_sd": Interval(0, None),
        "library_loc": Interval(-20, 20),
        "library_sd": Interval(0, 5),
        "modality": OneOf(MODALITIES),
        "n_guides": Integer(1),
        "efficiency_a": Interval(0, None, "neither"),
        "efficiency_b": Interval(0, None, "neither"),
        "escape_rate": Interval(0, 1, "left"),
        "ko_residual": Interval(0, 1, "right"),
        "activation_fold": Interval(1, None),
        "p_effect": Interval(0, 1),
        "effect_size": Interval(0, None),
        "effect_sd": Interval(0, None),
        "systematic_strength": Interval(0, None),
        "systematic_sd": Interval(0, None),
        "control_label": Instance((str,), "a string"),
        "dose_response": OneOf(DOSE_RESPONSES),
        "hill_coefficient": Interval(0, 100, "right"),
        "hill_half": Interval(0, 100, "right"),
        "n_programs": Integer(0, 100),
        "program_density": Interval(0, 1),
        "program_sd": Interval(0, 10),
        "program_shift_sd": Interval(0, 10),
        "n_batches": Integer(1, 10_000),
        "batch_sd": Interval(0, 10),
        "no_guide_rate": Interval(0, 1),
        "multiplet_rate": Interval(0, 1),
        "n_combinations": Integer(0),
        "interaction": OneOf(INTERACTIONS),
        "interaction_strength": Interval(0, 1),
        "n_contexts": Integer(1, 1000),
        "context_shared": Interval(0, 1),
        "context_sd": Interval(0, 10),
    }

    def __post_init__(self):
        check_params({f.name: getattr(self, f.name) for f in fields(self)}, self._SPEC)
        if self.control_label == "":
            raise ValueError("parameter 'control_label' must be a non-empty string; got ''")
        if self.unmeasured_targets > self.n_perturbations:
            raise ValueError(
                "parameter 'unmeasured_targets' must be at most n_perturbations; got "
                f"{self.unmeasured_targets} with n_perturbations = {self.n_perturbations}"
            )
        if self.n_perturbations - self.unmeasured_targets > self.n_genes:
            raise ValueError(
                "parameter 'n_perturbations' must be at most n_genes + unmeasured_targets (each "
                "perturbation with a measured target targets a distinct gene); got "
                f"{self.n_perturbations} with n_genes = {self.n_genes} and unmeasured_targets = "
                f"{self.unmeasured_targets}"
            )
        if self.multiplet_rate > 0 and self.n_perturbations < 2:
            raise ValueError(
                "parameter 'multiplet_rate' must be 0 with fewer than two perturbations (a multiplet "
                f"carries guides of two perturbations); got {self.multiplet_rate} with n_perturbations = "
                f"{self.n_perturbations}"
            )
        n_pairs = self.n_perturbations * (self.n_perturbations - 1) // 2
        if self.n_combinations > n_pairs:
            raise ValueError(
                "parameter 'n_combinations' must be at most n_perturbations (n_perturbations - 1) / 2 "
                f"(distinct pairs of single perturbations) = {n_pairs}; got {self.n_combinations}"
            )
        _as_tuple(self, "gene_means", low=0.0, strict=True, length=self.n_genes)
        _as_tuple(self, "systematic_direction", length=self.n_genes)
        for name in ("cells_per_perturbation", "cell_count_dispersion", "replicate_sd", "mean_shape",
                     "mean_scale", "min_mean", "dispersion_a0", "dispersion_a1", "dispersion_sd",
                     "library_loc", "library_sd", "efficiency_a", "efficiency_b", "escape_rate",
                     "ko_residual", "activation_fold", "p_effect", "effect_size", "effect_sd",
                     "systematic_strength", "systematic_sd", "hill_coefficient", "hill_half",
                     "program_density", "program_sd", "program_shift_sd", "batch_sd", "no_guide_rate",
                     "multiplet_rate", "interaction_strength", "context_shared", "context_sd"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("n_genes", "n_perturbations", "unmeasured_targets", "n_control_cells", "min_cells",
                     "n_replicates", "n_guides", "n_programs", "n_batches", "n_combinations",
                     "n_contexts"):
            object.__setattr__(self, name, int(getattr(self, name)))


@dataclass(frozen=True)
class NoiseOnlyParams(_ParamsMixin):
    """Parameters of :func:`simpert.sim.noise_only` (the PEREGGRN design, generalised).

    Attributes
    ----------
    n : int, default 100
        Number of samples when ``m == 1`` (controls, training and test rows); the number of
        test perturbations is ``n - n_train`` when the controls count towards the training
        set, ``n - n_train - n_controls`` otherwise.
    n_genes : int, default 100
        Number of genes G.
    n_controls : int, default 1
        Number of control samples n_c.
    controls_in_train : bool, default True
        Whether the controls are part of the ``n_train`` training samples.
    n_train : int, default 50
        Training samples (controls included when ``controls_in_train``).
    m : int, default 1
        Replicate samples per test perturbation.
    noise : {"gaussian", "nb"}, default "gaussian"
        Noise law.
    sigma : float, default 1.0
        Gaussian noise SD.
    effect_sd : float, default 0.0
        SD of true effects per perturbation x gene (0: pure noise).
    mean : float, default 10.0
        NB mean count (noise="nb").
    dispersion : float, default 0.1
        NB dispersion (noise="nb").
    control_label : str, default "control"
    """

    n: int = 100
    n_genes: int = 100
    n_controls: int = 1
    controls_in_train: bool = True
    n_train: int = 50
    m: int = 1
    noise: str = "gaussian"
    sigma: float = 1.0
    effect_sd: float = 0.0
    mean: float = 10.0
    dispersion: float = 0.1
    control_label: str = "control"

    def __post_init__(self):
        check_params(
            {f.name: getattr(self, f.name) for f in fields(self)},
            {
                "n": Integer(2),
                "n_genes": Integer(2),
                "n_controls": Integer(1),
                "controls_in_train": Instance((bool, np.bool_), "a bool"),
                "n_train": Integer(1),
                "m": Integer(1),
                "noise": OneOf(("gaussian", "nb")),
                "sigma": Interval(0, None, "neither"),
                "effect_sd": Interval(0, None),
                "mean": Interval(0, None, "neither"),
                "dispersion": Interval(0, None),
                "control_label": Instance((str,), "a string"),
            },
        )
        n_pert_train = self.n_train - self.n_controls if self.controls_in_train else self.n_train
        if n_pert_train < 1:
            raise ValueError(
                "parameter 'n_train' must leave at least one perturbed training sample "
                f"(n_train - n_controls >= 1 when controls_in_train); got n_train = {self.n_train} "
                f"with n_controls = {self.n_controls}"
            )
        if self.n_test < 1:
            raise ValueError(
                "parameter 'n' must leave at least one test perturbation "
                f"(n > n_train{'' if self.controls_in_train else ' + n_controls'}); got n = {self.n} "
                f"with n_train = {self.n_train}, n_controls = {self.n_controls}"
            )

    @property
    def n_train_perturbations(self) -> int:
        """Number of perturbed training samples N_p."""
        return self.n_train - self.n_controls if self.controls_in_train else self.n_train

    @property
    def n_test(self) -> int:
        """Number of test perturbations."""
        return self.n - self.n_train if self.controls_in_train else self.n - self.n_train - self.n_controls


@dataclass(frozen=True)
class NetworkParams(_ParamsMixin):
    """Parameters of :func:`simpert.sim.var_network` besides the network itself.

    The linear model per sample: ``x_t = b + x_{t-1} W`` (``input="persistent"``, steady
    state ``x = b (I - W)^-1``) or ``x_t = x_{t-1} W`` with ``x_0 = b`` (``input="initial"``,
    the PEREGGRN recursion); ``b ~ U(0, 1)`` per sample and gene; the perturbed gene is
    clamped to ``clamp_value`` after every step (hard intervention).

    Attributes
    ----------
    n_samples : int, default 10
        Samples (continuous) or cells (counts) per perturbation.
    n_controls : int, default 10
        Unperturbed samples (continuous) or control cells (counts).
    spectral_radius : float or None, default 0.1
        Rescale W to this spectral radius; None keeps W as given.
    steps : int or None, default 1
        Number of steps S; None for the steady state (linear solve).
    input : {"persistent", "initial"}, default "persistent"
    clamp_value : float, default 1.0
    output : {"continuous", "counts"}, default "continuous"
    noise_sd : float, default 0.0
        Gaussian measurement noise added to continuous output.
    count_scale : float, default 1.0
        Counts: log2 fold change per unit change of the network state.
    mean_shape, mean_scale, dispersion_a0, dispersion_a1, library_loc, library_sd, min_mean
        Count layer, as in :class:`ScreenParams`.
    control_label : str, default "control"
    """

    n_samples: int = 10
    n_controls: int = 10
    spectral_radius: float | None = 0.1
    steps: int | None = 1
    input: str = "persistent"
    clamp_value: float = 1.0
    output: str = "continuous"
    noise_sd: float = 0.0
    count_scale: float = 1.0
    mean_shape: float = 0.5
    mean_scale: float = 2.0
    min_mean: float = 1e-3
    dispersion_a0: float = 0.1
    dispersion_a1: float = 0.2
    library_loc: float = 0.0
    library_sd: float = 0.2
    control_label: str = "control"

    def __post_init__(self):
        check_params(
            {f.name: getattr(self, f.name) for f in fields(self)},
            {
                "n_samples": Integer(1),
                "n_controls": Integer(1),
                "spectral_radius": Interval(0, None, "neither", allow_none=True),
                "steps": Integer(1, allow_none=True),
                "input": OneOf(("persistent", "initial")),
                "clamp_value": Interval(None, None),
                "output": OneOf(("continuous", "counts")),
                "noise_sd": Interval(0, None),
                "count_scale": Interval(0, None),
                "mean_shape": Interval(0, None, "neither"),
                "mean_scale": Interval(0, None, "neither"),
                "min_mean": Interval(0, None, "neither"),
                "dispersion_a0": Interval(0, 1e3),
                "dispersion_a1": Interval(0, 1e3),
                "library_loc": Interval(-20, 20),
                "library_sd": Interval(0, 5),
                "control_label": Instance((str,), "a string"),
            },
        )
        if self.steps is None and self.input == "initial":
            raise ValueError(
                "parameter 'steps' must be an integer >= 1 when input='initial' (its steady state "
                "is zero apart from the clamp); got None"
            )
