"""Results of a DESeq2-style fit: the tidy table, the per-gene estimates and a summary."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._validation import OneOf, check

__all__ = ["DEResults", "DESummary", "TABLE_COLUMNS"]

TABLE_COLUMNS = ("perturbation", "gene", "base_mean", "log2fc", "lfc_se", "stat", "pvalue", "padj")
_MATRIX_COLUMNS = ("log2fc", "lfc_se", "stat", "pvalue", "padj", "log2fc_shrunk", "lfc_se_shrunk")


@dataclass(frozen=True)
class DESummary:
    """Summary of a :class:`DEResults`.

    Attributes
    ----------
    backend : str
        Engine that produced the results.
    alpha : float
        FDR level used for the counts.
    n_samples, n_genes : int
        Size of the fit.
    control : str
        Reference level.
    per_perturbation : pandas.DataFrame
        One row per perturbation: ``n_tested`` (non-NA p-values), ``n_up`` / ``n_down``
        (padj < alpha with positive / negative log2FC), ``n_de``, ``n_filtered`` (tested
        but removed by independent filtering), ``n_outliers`` (NA p-value from Cook's
        distance), ``filter_threshold``.
    dispersion : dict
        Trend kind and coefficients, prior variance, ``var_log_disp`` and the numbers of
        dispersion outliers and all-zero genes, where the backend reports them.
    """

    backend: str
    alpha: float
    n_samples: int
    n_genes: int
    control: str
    per_perturbation: pd.DataFrame
    dispersion: dict = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"DESeq2-style differential expression ({self.backend} backend)",
            f"  samples: {self.n_samples}   genes: {self.n_genes}   control: {self.control!r}   "
            f"alpha: {self.alpha:g}",
        ]
        if self.dispersion:
            lines.append("  dispersion: " + "   ".join(
                f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in self.dispersion.items()))
        pp = self.per_perturbation
        tot = pp[["n_tested", "n_up", "n_down", "n_de"]].sum()
        lines.append(f"  perturbations: {len(pp)}   DE calls (padj < {self.alpha:g}): {int(tot['n_de'])} "
                     f"({int(tot['n_up'])} up, {int(tot['n_down'])} down)")
        show = pp if len(pp) <= 20 else pd.concat([pp.head(10), pp.tail(10)])
        lines.append(show.to_string(max_rows=20))
        if len(pp) > 20:
            lines.append(f"  ... ({len(pp) - 20} perturbations not shown)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()


@dataclass(frozen=True, eq=False)
class DEResults:
    """Differential expression of every perturbation against the control.

    Attributes
    ----------
    perturbations : pandas.Index
        Tested levels (non-control), in order.
    genes : pandas.Index
        Genes.
    base_mean : pandas.Series
        Mean of the normalised counts per gene (over all samples).
    size_factors : pandas.Series
        Size factor per sample.
    dispersions : pandas.DataFrame
        Per gene: ``genewise``, ``trend``, ``map``, ``final`` (NaN for all-zero genes).
    backend : str
        ``"native"``, ``"pydeseq2"`` or ``"r"``.
    control : str
        Reference level.
    alpha : float
        FDR level of independent filtering and of the summary.
    info : dict
        Backend details (trend coefficients, prior variances, filter thresholds, ...).

    Notes
    -----
    ``table`` is the tidy view (one row per perturbation and gene, columns
    ``perturbation, gene, base_mean, log2fc, lfc_se, stat, pvalue, padj`` and, with
    shrinkage, ``log2fc_shrunk, lfc_se_shrunk``); :meth:`matrix` gives one column as a
    perturbations x genes DataFrame.
    """

    perturbations: pd.Index
    genes: pd.Index
    base_mean: pd.Series
    size_factors: pd.Series
    dispersions: pd.DataFrame
    backend: str
    control: str
    alpha: float
    matrices: dict = field(repr=False)
    info: dict = field(default_factory=dict, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def columns(self) -> tuple:
        """Columns of :attr:`table`."""
        extra = tuple(c for c in ("log2fc_shrunk", "lfc_se_shrunk") if c in self.matrices)
        return TABLE_COLUMNS + extra

    @property
    def table(self) -> pd.DataFrame:
        """Tidy table: one row per (perturbation, gene)."""
        if "table" not in self._cache:
            P, G = len(self.perturbations), len(self.genes)
            data = {
                "perturbation": pd.Categorical.from_codes(np.repeat(np.arange(P), G),
                                                          categories=self.perturbations),
                "gene": pd.Categorical.from_codes(np.tile(np.arange(G), P), categories=self.genes),
                "base_mean": np.tile(self.base_mean.to_numpy(), P),
            }
            for c in self.columns[3:]:
                data[c] = np.asarray(self.matrices[c]).reshape(-1)
            self._cache["table"] = pd.DataFrame(data)
        return self._cache["table"]

    def matrix(self, column: str = "log2fc") -> pd.DataFrame:
        """One result column as a perturbations x genes DataFrame.

        Parameters
        ----------
        column : str, default "log2fc"
            One of ``log2fc``, ``lfc_se``, ``stat``, ``pvalue``, ``padj`` and, with
            shrinkage, ``log2fc_shrunk``, ``lfc_se_shrunk``.

        Returns
        -------
        pandas.DataFrame
        """
        check("column", column, OneOf(tuple(c for c in _MATRIX_COLUMNS if c in self.matrices)))
        return pd.DataFrame(self.matrices[column], index=self.perturbations, columns=self.genes)

    def summary(self) -> DESummary:
        """Return a :class:`DESummary` (DE counts per perturbation, dispersion fit)."""
        p = np.asarray(self.matrices["pvalue"])
        q = np.asarray(self.matrices["padj"])
        lfc = np.asarray(self.matrices["log2fc"])
        sig = q < self.alpha
        outl = self.info.get("cooks_outlier")
        n_out = np.full(len(self.perturbations), int(np.sum(outl)) if outl is not None else 0)
        thr = self.info.get("filter_threshold")
        pp = pd.DataFrame({
            "n_tested": np.isfinite(p).sum(axis=1),
            "n_up": (sig & (lfc > 0)).sum(axis=1),
            "n_down": (sig & (lfc < 0)).sum(axis=1),
            "n_de": sig.sum(axis=1),
            "n_filtered": (np.isfinite(p) & ~np.isfinite(q)).sum(axis=1),
            "n_outliers": n_out,
        }, index=self.perturbations)
        if thr is not None:
            pp["filter_threshold"] = np.asarray(thr, dtype=float)
        disp = {k: self.info[k] for k in ("trend", "asymptDisp", "extraPois", "prior_var", "var_log_disp",
                                            "beta_prior_var") if k in self.info and self.info[k] is not None}
        disp["n_all_zero"] = int(self.dispersions["final"].isna().sum())
        return DESummary(backend=self.backend, alpha=self.alpha, n_samples=len(self.size_factors),
                         n_genes=len(self.genes), control=self.control, per_perturbation=pp,
                         dispersion=disp)

    def __repr__(self) -> str:
        return (f"DEResults(backend={self.backend!r}, perturbations={len(self.perturbations)}, "
                f"genes={len(self.genes)}, control={self.control!r})")
