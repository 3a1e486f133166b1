"""Does a simulation look like real data? Panels in the manner of splatter's compareSCEs.

Followed: splatter (Zappia, Phipson and Oshlack 2017, Genome Biology 18:174), file
``R/compare.R``, ``compareSCEs``: per gene the mean and variance of ``log2(CPM + 1)`` and the
percentage of zeros, per cell the library size (total counts) and the percentage of zeros,
and the correlations among the 100 genes of largest variance of ``log2(CPM + 1)``. Here the
correlations are summarised by the eigenvalues of their correlation matrix (the spectrum:
one dominant eigenvalue means a shared factor, a flat spectrum independent genes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.stats as st

from .._profiles import counts_matrix
from .._validation import Instance, Integer, check, fail
from ._estimate import FitSummary

__all__ = ["compare", "Comparison", "PANELS"]

#: Panels of a comparison, in figure order.
PANELS = ("library_size", "mean_variance", "zeros_per_gene", "zeros_per_cell", "correlation_spectrum")


@dataclass
class Comparison:
    """Panels comparing datasets (a simulation and real data), as splatter's compareSCEs.

    Attributes
    ----------
    table : DataFrame
        One row per panel statistic per dataset: ``panel``, ``statistic``, ``dataset``,
        ``value``.
    genes : DataFrame
        Per gene and dataset: ``dataset``, ``gene``, ``mean_log_cpm``, ``var_log_cpm``,
        ``mean_count``, ``pct_zero``.
    cells : DataFrame
        Per cell and dataset: ``dataset``, ``library_size``, ``pct_zero``.
    spectrum : DataFrame
        ``dataset``, ``rank`` (1 = largest), ``eigenvalue`` of the correlation matrix of the
        top genes (eigenvalues sum to the number of genes used).
    datasets : tuple of str
        Dataset labels, in the order given.
    """

    table: pd.DataFrame
    genes: pd.DataFrame
    cells: pd.DataFrame
    spectrum: pd.DataFrame
    datasets: tuple = field(default_factory=tuple)

    def summary(self) -> FitSummary:
        """Each statistic side by side per dataset, with the ratio of the first to the last.

        Returns
        -------
        FitSummary
            ``.table``: one row per (panel, statistic), one column per dataset, and
            ``ratio`` (first dataset / last dataset, usually simulated / real).
        """
        wide = self.table.pivot_table(index=["panel", "statistic"], columns="dataset", values="value",
                                      sort=False)
        wide = wide[list(self.datasets)]
        first, last = self.datasets[0], self.datasets[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            wide["ratio"] = wide[first] / wide[last]
        wide.columns.name = None
        return FitSummary(wide.reset_index(), f"Comparison of {', '.join(self.datasets)}")

    def figure(self, *, figsize: tuple = (15.0, 8.0)):
        """A matplotlib figure with one panel per comparison (see :data:`PANELS`).

        Parameters
        ----------
        figsize : tuple of float, default (15.0, 8.0)
            Figure size in inches.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 3, figsize=figsize)
        ax = axes.ravel()
        colours = {d: f"C{i}" for i, d in enumerate(self.datasets)}
        for d in self.datasets:
            g = self.genes[self.genes["dataset"] == d]
            c = self.cells[self.cells["dataset"] == d]
            s = self.spectrum[self.spectrum["dataset"] == d]
            kw = dict(s=4, alpha=0.35, color=colours[d], label=d, rasterized=True)
            ax[0].hist(np.log10(np.maximum(c["library_size"], 1)), bins=40, histtype="step", color=colours[d],
                       label=d, density=True)
            ax[1].scatter(g["mean_log_cpm"], g["var_log_cpm"], **kw)
            ax[2].scatter(np.log10(np.maximum(g["mean_count"], 1e-4)), g["pct_zero"], **kw)
            ax[3].scatter(np.log10(np.maximum(c["library_size"], 1)), c["pct_zero"], **kw)
            ax[4].plot(s["rank"], s["eigenvalue"], "-o", ms=3, color=colours[d], label=d)
            ax[5].hist(g["mean_log_cpm"], bins=40, histtype="step", color=colours[d], label=d, density=True)
        titles = [("a  library sizes", "log10 total counts per cell", "density"),
                  ("b  mean-variance", "mean log2(CPM + 1)", "variance log2(CPM + 1)"),
                  ("c  zeros per gene vs mean", "log10 mean count", "% zeros (gene)"),
                  ("d  zeros per cell vs library size", "log10 total counts", "% zeros (cell)"),
                  ("e  gene-gene correlation spectrum", "rank", "eigenvalue (top-variance genes)"),
                  ("f  mean expression", "mean log2(CPM + 1)", "density")]
        for a, (t, xl, yl) in zip(ax, titles):
            a.set_title(t, loc="left", fontsize=10)
            a.set_xlabel(xl)
            a.set_ylabel(yl)
            a.grid(color="0.92", lw=0.5)
        ax[4].set_yscale("log")
        ax[4].axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax[0].legend(frameon=False, fontsize=8)
        fig.tight_layout()
        return fig

    plot = figure


def _matrix(adata, layer, name):
    check(name, adata, Instance((ad.AnnData,), "an AnnData of counts"))
    if layer is not None:
        if layer not in adata.layers:
            fail("layer", f"None or a layer of {name} ({', '.join(adata.layers.keys()) or 'none'})", layer)
        X = adata.layers[layer]
    else:
        X = counts_matrix(adata)
    X = sp.csr_matrix(X, dtype=np.float64)
    if X.shape[0] < 2 or X.shape[1] < 2:
        fail(name, "an AnnData with at least two cells and two genes", f"shape {X.shape}")
    if X.data.size and (not np.all(np.isfinite(X.data)) or X.data.min() < 0):
        fail(name, "non-negative finite counts", "negative, NaN or infinite values")
    return X


def _panels(X: sp.csr_matrix, genes, label: str, n_top: int):
    n, G = X.shape
    lib = np.asarray(X.sum(axis=1)).ravel()
    nz_cell = np.diff(X.indptr)
    nz_gene = np.bincount(X.indices, minlength=G)
    cpm = sp.diags(1e6 / np.where(lib > 0, lib, 1.0)) @ X
    L = cpm.copy()
    L.data = np.log2(L.data + 1.0)
    m = np.asarray(L.mean(axis=0)).ravel()
    m2 = np.asarray(L.multiply(L).mean(axis=0)).ravel()
    v = np.maximum(m2 - m * m, 0.0) * n / (n - 1)
    # from exact integer sums: genes (cells) with equal counts get equal values, so the Spearman
    # correlations below see their ties (scipy's sparse mean divides before summing)
    mean_count = np.asarray(X.sum(axis=0)).ravel() / n
    genes_df = pd.DataFrame({"dataset": label, "gene": np.asarray(genes).astype(str), "mean_log_cpm": m,
                             "var_log_cpm": v, "mean_count": mean_count, "pct_zero": 100.0 * (n - nz_gene) / n})
    cells_df = pd.DataFrame({"dataset": label, "library_size": lib, "pct_zero": 100.0 * (G - nz_cell) / G})
    # correlation spectrum of the top-variance genes (log2 CPM + 1)
    top = np.argsort(-v, kind="stable")[:n_top]
    top = top[v[top] > 0]
    if top.size >= 2:
        sub = L[:, top].toarray()
        C = np.corrcoef(sub, rowvar=False)
        ev = np.sort(np.linalg.eigvalsh(C))[::-1]
    else:
        ev = np.ones(max(top.size, 1))
    spec = pd.DataFrame({"dataset": label, "rank": np.arange(1, ev.size + 1), "eigenvalue": ev})
    k = top.size
    off = C[np.triu_indices(k, 1)] if top.size >= 2 else np.zeros(0)
    rho_lib = st.spearmanr(lib, cells_df["pct_zero"]).statistic if np.ptp(lib) > 0 else np.nan
    fit = np.polyfit(m[m > 0], v[m > 0], 2) if np.sum(m > 0) > 3 else [np.nan] * 3
    rows = [
        ("library_size", "median", float(np.median(lib))),
        ("library_size", "mean", float(lib.mean())),
        ("library_size", "cv", float(lib.std(ddof=1) / lib.mean()) if lib.mean() > 0 else np.nan),
        ("mean_variance", "median_mean_log_cpm", float(np.median(m))),
        ("mean_variance", "median_var_log_cpm", float(np.median(v))),
        ("mean_variance", "var_at_median_mean", float(np.polyval(fit, np.median(m[m > 0])))
         if np.sum(m > 0) > 3 else np.nan),
        ("zeros_per_gene", "mean_pct_zero", float(genes_df["pct_zero"].mean())),
        ("zeros_per_gene", "spearman_with_mean", float(st.spearmanr(mean_count, genes_df["pct_zero"]).statistic)),
        ("zeros_per_cell", "mean_pct_zero", float(cells_df["pct_zero"].mean())),
        ("zeros_per_cell", "spearman_with_library", float(rho_lib)),
        ("correlation_spectrum", "top_eigenvalue", float(ev[0])),
        ("correlation_spectrum", "top_eigenvalue_fraction", float(ev[0] / ev.sum())),
        ("correlation_spectrum", "mean_abs_correlation", float(np.mean(np.abs(off))) if off.size else np.nan),
        ("correlation_spectrum", "n_genes", float(k)),
    ]
    table = pd.DataFrame(rows, columns=["panel", "statistic", "value"])
    table.insert(2, "dataset", label)
    return table, genes_df, cells_df, spec


def compare(simulated, real, *, labels: tuple = ("simulated", "real"), n_top_genes: int = 100,
            layer: str | None = None) -> Comparison:
    """Compare a simulation to real data, panel by panel (as splatter's compareSCEs).

    Panels: library sizes; mean-variance of ``log2(CPM + 1)`` per gene; zeros per gene
    against the mean; zeros per cell against the library size; the spectrum of the
    gene-gene correlation matrix of the ``n_top_genes`` genes of largest ``log2(CPM + 1)``
    variance (each dataset its own genes). Follows splatter ``R/compare.R``
    (``compareSCEs``).

    Parameters
    ----------
    simulated : AnnData
        Simulated cells x genes (counts in ``layers["counts"]`` if present, else ``.X``).
    real : AnnData
        Real cells x genes (the genes need not match).
    labels : tuple of str, default ("simulated", "real")
        Dataset labels in the table and the figure.
    n_top_genes : int, default 100
        Genes in the correlation spectrum (splatter uses 100).
    layer : str or None
        Layer holding the counts of both datasets; default ``layers["counts"]`` or ``.X``.

    Returns
    -------
    Comparison
        ``.table`` (panel, statistic, dataset, value), the per-gene and per-cell frames,
        ``.spectrum``, ``.summary()`` and ``.figure()`` (alias ``.plot()``).

    Examples
    --------
    >>> import simpert as sp
    >>> real = sp.sim.screen(n_genes=200, n_perturbations=5, rng=0)
    >>> simulated = sp.sim.screen(sp.sim.estimate_params(real), rng=1)
    >>> cmp = sp.sim.compare(simulated, real)
    >>> sorted(cmp.table["panel"].unique())[:2]
    ['correlation_spectrum', 'library_size']
    """
    check("n_top_genes", n_top_genes, Integer(2))
    check("layer", layer, Instance((str, type(None)), "a layer name or None"))
    if not (isinstance(labels, (tuple, list)) and len(labels) == 2 and all(isinstance(x, str) and x for x in labels)
            and labels[0] != labels[1]):
        fail("labels", "two distinct non-empty strings", labels)
    parts = []
    for name, adata, label in (("simulated", simulated, labels[0]), ("real", real, labels[1])):
        X = _matrix(adata, layer, name)
        parts.append(_panels(X, adata.var_names, label, int(n_top_genes)))
    table, genes, cells, spec = (pd.concat([p[i] for p in parts], ignore_index=True) for i in range(4))
    return Comparison(table=table, genes=genes, cells=cells, spectrum=spec, datasets=tuple(labels))
