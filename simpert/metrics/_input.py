"""The single argument every metric function receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Mapping

import numpy as np

__all__ = ["MetricInput", "DETable", "CellSet", "DEFAULT_OPTIONS"]

#: Options metrics read from ``MetricInput.options`` (overridable through ``score(options=...)``).
DEFAULT_OPTIONS = MappingProxyType(
    {
        "fdr": 0.05,  # significance threshold of DE-based metrics (cell-eval)
        "top_n": 20,  # PEREGGRN's top-n genes by |observed LFC|
        "n_de": 20,  # Systema / Mejia DE-restricted forms: top genes by |observed change|
        "n_pcs": 20,  # PEREGGRN distance_in_pca
        "n_clusters": 5,  # cell label accuracy: k-means clusters of the training profiles
        "chunk_size": 256,  # rows per block in pairwise distances
        "seed": 0,  # seeds the classifier of cell label accuracy
    }
)


@dataclass(frozen=True)
class DETable:
    """Differential-expression results as (perturbation x gene) matrices.

    Attributes
    ----------
    lfc : ndarray, shape (P, G)
        log2 fold change (NaN where the table has no row).
    fdr : ndarray, shape (P, G)
        Adjusted p-value (NaN where the table has no row).
    present : ndarray of bool, shape (P, G)
        Whether the table has a row for (perturbation, gene).
    order : ndarray of int, shape (P, G), or None
        Position of each gene within its perturbation's rows of the table (ties in
        sorting are broken by this order, as polars' ordinal rank does); G where absent.
        None when every perturbation's rows list its genes in column order, so that the
        gene index itself is the table order (no matrix is stored then).

    Notes
    -----
    Rankings of significant genes and sorted score rows derived from a table are cached
    on the object (they depend only on the table and the threshold), so that the
    overlap and AUC metrics of one prediction share them.
    """

    lfc: np.ndarray
    fdr: np.ndarray
    present: np.ndarray
    order: np.ndarray | None = None
    cache: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class CellSet:
    """Log-normalised cells of the test perturbations and the controls.

    Attributes
    ----------
    X : scipy.sparse.csr_matrix or ndarray, shape (n_cells, G)
        Log-normalised expression (``log1p(target_sum * x / total)``), genes in the order
        of ``MetricInput.genes``.
    group : ndarray of int, shape (n_cells,)
        Index into ``MetricInput.perturbations`` for perturbed cells, -1 for control
        cells, -2 for cells of other perturbations (ignored).
    counts : scipy.sparse.csr_matrix or ndarray, shape (n_cells, G), or None
        The raw counts of the same cells and genes, when the data are counts (the
        ``vcc2026`` metrics read them); None for data without counts.
    train : ndarray of bool, shape (n_cells,), or None
        True for the cells of the training perturbations and the controls (the cells a
        method is trained on); None when not known.
    """

    X: object
    group: np.ndarray
    counts: object = None
    train: np.ndarray | None = None


@dataclass(frozen=True)
class MetricInput:
    """Everything a metric may look at, aligned on perturbations and genes.

    Attributes
    ----------
    pred, real : ndarray, shape (P, G)
        Predicted and observed log-normalised profiles of the test perturbations. With
        ``target="reveal"`` the predicted target gene is already set to its observed value.
    pred_control, real_control : ndarray, shape (G,)
        The control profile the prediction assumes and the observed control profile.
    perturbations : tuple of str
        Test perturbation names (length P).
    genes : tuple of str
        Gene names (length G).
    targets : ndarray of int, shape (P,)
        Column index of each perturbation's target gene, -1 when it has none.
    reference_real, reference_pred : ndarray, shape (G,)
        Reference points subtracted from the observed and predicted profiles to form
        deltas (control profiles, the perturbed centroid of the training perturbations,
        or an external vector).
    train : ndarray, shape (N_train, G) or None
        Observed profiles of the training perturbations.
    train_perturbations : tuple of str
    train_control : ndarray (n_ctrl_samples, G) or None
        Observed control samples (rows) in training, when available.
    weights : ndarray, shape (P, G) or (G,), or None
        Gene weights of the weighted metrics (non-negative).
    de_real, de_pred : DETable or None
    real_cells, pred_cells : CellSet or None
    target : str
        Target handling: "include", "exclude" (one-sided), "pairwise" or "reveal".
    options : mapping
        Metric options (see ``DEFAULT_OPTIONS``).
    cache : dict or None
        Scratch space shared by all predictions of one :func:`simpert.metrics.score`
        call, for quantities that depend only on the observed data (E-distances of the
        observed cells, the fitted cell-label classifier). None outside ``score``.
    """

    pred: np.ndarray
    real: np.ndarray
    pred_control: np.ndarray
    real_control: np.ndarray
    perturbations: tuple
    genes: tuple
    targets: np.ndarray
    reference_real: np.ndarray = None
    reference_pred: np.ndarray = None
    train: np.ndarray | None = None
    train_perturbations: tuple = ()
    train_control: np.ndarray | None = None
    weights: np.ndarray | None = None
    de_real: DETable | None = None
    de_pred: DETable | None = None
    real_cells: CellSet | None = None
    pred_cells: CellSet | None = None
    target: str = "include"
    options: Mapping = field(default_factory=lambda: DEFAULT_OPTIONS)
    cache: dict | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.reference_real is None:
            object.__setattr__(self, "reference_real", self.real_control)
        if self.reference_pred is None:
            object.__setattr__(self, "reference_pred", self.pred_control)

    # ------------------------------------------------------------------ shapes
    @property
    def n_perturbations(self) -> int:
        """Number of test perturbations P."""
        return self.real.shape[0]

    @property
    def n_genes(self) -> int:
        """Number of genes G."""
        return self.real.shape[1]

    def option(self, name: str):
        """Value of option ``name`` (falling back to ``DEFAULT_OPTIONS``)."""
        if name in self.options:
            return self.options[name]
        return DEFAULT_OPTIONS[name]

    # ------------------------------------------------------------------ deltas
    @cached_property
    def delta_real(self) -> np.ndarray:
        """Observed profiles minus the observed reference point, (P, G)."""
        return self.real - self.reference_real

    @cached_property
    def delta_pred(self) -> np.ndarray:
        """Predicted profiles minus the predicted reference point, (P, G)."""
        return self.pred - self.reference_pred

    @cached_property
    def delta_real_control(self) -> np.ndarray:
        """Observed profiles minus the observed control (independent of ``reference``)."""
        return self.real - self.real_control

    @cached_property
    def delta_pred_control(self) -> np.ndarray:
        """Predicted profiles minus the predicted control (independent of ``reference``)."""
        return self.pred - self.pred_control

    # ------------------------------------------------------------------ targets
    @property
    def excludes_target(self) -> bool:
        """Whether the target gene is dropped ("exclude" or "pairwise")."""
        return self.target in ("exclude", "pairwise")

    @cached_property
    def gene_mask(self) -> np.ndarray | None:
        """(P, G) bool mask of genes kept in per-perturbation comparisons, or None for all.

        With ``target`` "exclude" or "pairwise" each perturbation drops its own target
        gene (a comparison of a prediction with its own observation involves only one
        target, so the two options agree here; they differ in cross-perturbation metrics).
        """
        if not self.excludes_target or not np.any(self.targets >= 0):
            return None
        mask = np.ones(self.real.shape, dtype=bool)
        rows = np.flatnonzero(self.targets >= 0)
        mask[rows, self.targets[rows]] = False
        return mask

    def cross_targets(self):
        """Target indices for cross-perturbation distances: (pred side, real side).

        "exclude" drops the predicted perturbation's target from every comparison it
        takes part in (cell-eval's one-sided exclusion); "pairwise" drops the targets of
        both perturbations compared (Kernfeld); otherwise nothing is dropped.
        """
        if self.target == "exclude":
            return self.targets, None
        if self.target == "pairwise":
            return self.targets, self.targets
        return None, None
