"""Cell contexts: one context of a multi-context screen as a screen of its own."""

from __future__ import annotations

import copy

import anndata as ad
import numpy as np

from .._validation import Instance, check, fail

__all__ = ["context_view", "CONTEXT_KEYS"]

#: Truth entries that describe several contexts (dropped from a one-context view).
CONTEXT_KEYS = ("contexts", "context_offsets", "context_effects", "context_log2fc", "context_specific_log2fc",
                "context_single_log2fc")


def context_view(adata: ad.AnnData, context: str) -> ad.AnnData:
    """The cells of one context, with that context's truth: a screen of its own.

    Train on one context and test on another (cross-context transfer):
    ``train = context_view(a, "c0")``, ``test = context_view(a, "c1")``; each is a screen
    whose truth (``log2fc``, ``specific_log2fc``, doubles' effects) and ``var['base_mean']``
    (times ``2^offset`` of the context) are the context's, so :func:`redraw`,
    :func:`expected_counts`, :func:`simpert.predict.split` and the predictors work on it.

    Parameters
    ----------
    adata : AnnData
        Cells of a screen simulated with ``n_contexts > 1``.
    context : str
        One of the labels of ``adata.obs['context']`` (``c0``, ``c1``, ...).

    Returns
    -------
    AnnData
        The context's cells (a copy); ``uns['simpert']['context']`` names the context.

    Raises
    ------
    ValueError
        For an AnnData without contexts, a pseudobulk AnnData, or an unknown context.
    """
    check("adata", adata, Instance((ad.AnnData,), "an AnnData"))
    rec = adata.uns.get("simpert") if isinstance(adata.uns, dict) or hasattr(adata.uns, "get") else None
    tr = rec.get("truth", {}) if isinstance(rec, dict) else {}
    if "context_offsets" not in tr or "context" not in adata.obs:
        fail("adata", "cells of a screen simulated with n_contexts > 1 (obs 'context' and its truth)",
             "an AnnData without contexts")
    if "design" in rec:
        fail("adata", "cells (take the context's cells before summing them)", "a pseudobulk AnnData")
    names = [str(c) for c in np.asarray(tr["contexts"], dtype=object)]
    check("context", context, Instance((str,), "a string"))
    if context not in names:
        fail("context", f"one of the contexts ({', '.join(names)})", context)
    k = names.index(context)
    cells = np.flatnonzero(adata.obs["context"].astype(str).to_numpy() == context)
    out = adata[cells].copy()
    new_rec = copy.deepcopy(dict(rec))
    t = new_rec["truth"]
    G = len(t["genes"])
    n_rows = len(t["perturbations"])
    t["log2fc"] = np.asarray(tr["context_log2fc"], dtype=float).reshape(-1, n_rows, G)[k]
    t["specific_log2fc"] = np.asarray(tr["context_specific_log2fc"], dtype=float).reshape(-1, n_rows, G)[k]
    if "context_single_log2fc" in tr:
        t["single_log2fc"] = np.asarray(tr["context_single_log2fc"], dtype=float).reshape(-1, n_rows, G)[k]
    if "combination_pairs" in tr:
        pairs = np.asarray(tr["combination_pairs"], dtype=np.int64).reshape(-1, 2)
        n_single = n_rows - pairs.shape[0]
        delta = np.asarray(tr["context_effects"], dtype=float).reshape(-1, n_rows, G)[k]
        combined = np.asarray(tr["combination_effects"], dtype=float) + delta[n_single:]
        singles = np.asarray(t["specific_log2fc"])[:n_single].copy()
        ti = np.asarray(t["target_index"], dtype=np.int64)[:n_single]
        has = np.flatnonzero(ti >= 0)
        singles[has, ti[has]] = 0.0
        t["combination_effects"] = combined
        t["combination_interaction"] = combined - singles[pairs[:, 0]] - singles[pairs[:, 1]]
    for key in CONTEXT_KEYS:
        t.pop(key, None)
    new_rec["context"] = context
    out.uns["simpert"] = new_rec
    offsets = np.asarray(tr["context_offsets"], dtype=float).reshape(-1, G)[k]
    out.var["base_mean"] = out.var["base_mean"].to_numpy(dtype=float) * np.exp2(offsets)
    return out
