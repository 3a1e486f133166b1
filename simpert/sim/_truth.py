"""The ground truth carried by a simulated AnnData, as pandas objects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._validation import fail

__all__ = ["Truth", "truth"]


@dataclass(frozen=True)
class Truth:
    """Ground truth of a simulated screen.

    Attributes
    ----------
    kind : str
        "screen", "noise_only" or "var_network".
    control : str
        The control label.
    log2fc : DataFrame
        Perturbations x genes: true log2 fold change of the expected mean of the
        perturbation's cells vs control (for continuous output: the difference of expected
        values on the data scale).
    specific : DataFrame
        Perturbations x genes: specific effects only (sparse effects + target).
    shared : Series
        Genes: shared systematic response at the simulated strength.
    targets : Series
        Perturbation -> target gene name.
    network : DataFrame or None
        Genes x genes, entry [i, j] = effect of i on j (var_network only).
    params : dict
        The parameters the data were simulated with.
    combinations : DataFrame or None
        Double perturbations (screens with ``n_combinations``): per double label, the two
        singles ``a`` and ``b``, the interaction ``type`` and its coefficients ``coef_a``,
        ``coef_b`` (the double's log2 effect is ``coef_a * a + coef_b * b``).
    interaction : DataFrame or None
        Doubles x genes: the genetic interaction, double - a - b (full-dose effects).
    context_log2fc : dict of str to DataFrame, or None
        Per context (screens with ``n_contexts > 1``): perturbations x genes log2FC.
    """

    kind: str
    control: str
    log2fc: pd.DataFrame
    specific: pd.DataFrame
    shared: pd.Series
    targets: pd.Series
    network: pd.DataFrame | None
    params: dict
    combinations: pd.DataFrame | None = None
    interaction: pd.DataFrame | None = None
    context_log2fc: dict | None = None

    @property
    def perturbations(self) -> pd.Index:
        """The non-control perturbations."""
        return self.log2fc.index

    @property
    def genes(self) -> pd.Index:
        """The genes."""
        return self.log2fc.columns


def _get_record(adata) -> dict:
    uns = getattr(adata, "uns", None)
    if uns is None or "simpert" not in uns or "truth" not in uns["simpert"]:
        fail("adata", "an AnnData simulated by simpert (with uns['simpert']['truth'])",
             type(adata).__name__ if uns is None else "an AnnData without uns['simpert']['truth']")
    return uns["simpert"]


def truth(adata) -> Truth:
    """Return the ground truth of a simulated AnnData.

    Parameters
    ----------
    adata : AnnData
        Output of a simpert simulator (also after write_h5ad / read_h5ad).

    Returns
    -------
    Truth
    """
    rec = _get_record(adata)
    tr = rec["truth"]
    perts = pd.Index(np.asarray(tr["perturbations"], dtype=object).astype(str), name="perturbation")
    genes = pd.Index(np.asarray(tr["genes"], dtype=object).astype(str), name="gene")
    P, G = len(perts), len(genes)
    lfc = pd.DataFrame(np.asarray(tr["log2fc"], dtype=float).reshape(P, G), index=perts, columns=genes)
    spec = pd.DataFrame(np.asarray(tr["specific_log2fc"], dtype=float).reshape(P, G), index=perts, columns=genes)
    shared = pd.Series(np.asarray(tr["shared_log2fc"], dtype=float).reshape(G), index=genes, name="shared")
    targets = pd.Series(np.asarray(tr["targets"], dtype=object).astype(str), index=perts, name="target")
    net = None
    if "network" in tr:
        net = pd.DataFrame(np.asarray(tr["network"], dtype=float).reshape(G, G), index=genes, columns=genes)
    params = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dict(rec.get("params", {})).items()}
    combos = inter = ctx = None
    if "combination_pairs" in tr:
        pairs = np.asarray(tr["combination_pairs"], dtype=np.int64).reshape(-1, 2)
        coef = np.asarray(tr["combination_coef"], dtype=float).reshape(-1, 2)
        labels = perts[P - pairs.shape[0]:]
        combos = pd.DataFrame({"a": perts[pairs[:, 0]], "b": perts[pairs[:, 1]],
                               "type": np.asarray(tr["combination_type"], dtype=object).astype(str),
                               "coef_a": coef[:, 0], "coef_b": coef[:, 1]}, index=labels)
        inter = pd.DataFrame(np.asarray(tr["combination_interaction"], dtype=float).reshape(-1, G), index=labels,
                             columns=genes)
    if "context_log2fc" in tr:
        names = [str(c) for c in np.asarray(tr["contexts"], dtype=object)]
        arr = np.asarray(tr["context_log2fc"], dtype=float).reshape(len(names), P, G)
        ctx = {c: pd.DataFrame(arr[k], index=perts, columns=genes) for k, c in enumerate(names)}
    return Truth(kind=str(rec.get("kind", "")), control=str(rec.get("control", "control")), log2fc=lfc,
                 specific=spec, shared=shared, targets=targets, network=net, params=params,
                 combinations=combos, interaction=inter, context_log2fc=ctx)
