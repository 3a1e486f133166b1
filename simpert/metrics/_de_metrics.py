"""cell-eval's differential-expression metrics, vectorised over perturbations.

Definitions follow ``cell_eval.metrics._de`` and ``cell_eval._types._de`` (cell-eval 0.8.x):
a gene is significant when its adjusted p-value is below ``fdr`` (0.05); significant
genes are ranked by decreasing |log2 fold change|, ties kept in table order; cell-eval
stores fold changes and adjusted p-values as float32, and so does this module before
thresholding and ranking, so that both select the same genes.

- overlap_at_N (the challenge's DES): ``|R[:k] & P[:k]| / k`` with R, P the ranked real and
  predicted significant genes and ``k = |R|``; overlap_at_K uses ``k = min(K, |R|)``.
- precision_at_N: the same with ``k = |P|`` (precision_at_K: ``min(K, |P|)``).
  Both are 0 when k = 0, and 0 for every perturbation when either table has no
  significant gene at all.
- de_direction_match: among real significant genes present in the predicted table, the
  fraction whose fold changes have the same sign.
- de_spearman_lfc_sig: Spearman correlation of real and predicted fold changes over the
  real significant genes (predicted fold change 0 where missing).
- de_sig_genes_recall: fraction of real significant genes also significant in the prediction.
- pr_auc / roc_auc: real significance as labels, ``-log10`` of the predicted adjusted
  p-value (missing -> 1, clipped to [1e-10, 1]) as scores; NaN when all labels agree.
A perturbation without real significant genes gets NaN in the last three (cell-eval leaves
it out of its table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._input import DETable
from ._registry import Metric, register
from ._stats import row_rank, row_pearson

__all__ = [
    "de_table",
    "overlap_at",
    "de_direction_match",
    "de_spearman_lfc_sig",
    "de_sig_genes_recall",
    "pr_auc",
    "roc_auc",
]

_ALIASES = {
    "perturbation": ("perturbation", "target", "group"),
    "gene": ("gene", "feature", "names"),
    "log2fc": ("log2fc", "log2_fold_change", "logfoldchanges"),
    "padj": ("padj", "fdr", "pvals_adj"),
}


def _col(df, key):
    for c in _ALIASES[key]:
        if c in df.columns:
            return c
    raise ValueError(
        f"parameter 'de' must be a table with a column named one of {_ALIASES[key]}; "
        f"got columns {list(df.columns)[:10]}"
    )


def _codes(series, names) -> np.ndarray:
    """Index of each value of a pandas or polars Series in ``names`` (-1 when absent).

    Works on the distinct values only, so that long tables of repeated strings are never
    turned into Python objects row by row.
    """
    target = pd.Index([str(x) for x in names])
    if isinstance(series, pd.Series):
        cat = pd.Categorical(series.astype(str))
        lut = target.get_indexer(cat.categories)
        return np.where(cat.codes >= 0, lut[cat.codes], -1)
    import polars as pl

    s = series.cast(pl.String)
    uniq = s.unique().drop_nulls().to_list()
    lut = target.get_indexer(uniq)
    return s.replace_strict(uniq, lut.tolist(), default=-1, return_dtype=pl.Int64).to_numpy()


def _floats(series) -> np.ndarray:
    if isinstance(series, pd.Series):
        return series.to_numpy(dtype=float)
    import polars as pl

    return series.cast(pl.Float64).to_numpy()


def de_table(frame, perturbations, genes) -> DETable:
    """Align a tidy DE table on (perturbations x genes) matrices.

    Parameters
    ----------
    frame : pandas or polars DataFrame
        One row per (perturbation, gene) with columns ``perturbation`` (or ``target``),
        ``gene`` (or ``feature``), ``log2fc`` (or ``log2_fold_change``) and ``padj`` (or
        ``fdr``): simpert's schema or cell-eval's / pdex's.
    perturbations, genes : sequence of str

    Returns
    -------
    DETable
        Fold changes and adjusted p-values stored as float32 (as cell-eval stores them).
    """
    if not isinstance(frame, pd.DataFrame) and not (hasattr(frame, "columns") and hasattr(frame, "height")):
        raise TypeError(f"parameter 'de' must hold pandas or polars DataFrames; got {type(frame).__name__}")
    cp, cg, cl, cf = (_col(frame, k) for k in ("perturbation", "gene", "log2fc", "padj"))
    P, G = len(perturbations), len(genes)
    pi = _codes(frame[cp], perturbations)
    gi = _codes(frame[cg], genes)
    keep = (pi >= 0) & (gi >= 0)
    pi, gi = pi[keep], gi[keep]
    lfc = np.full((P, G), np.nan, dtype=np.float32)
    fdr = np.full((P, G), np.nan, dtype=np.float32)
    present = np.zeros((P, G), dtype=bool)
    order = np.full((P, G), G, dtype=np.int32)
    lfc[pi, gi] = _floats(frame[cl])[keep]
    fdr[pi, gi] = _floats(frame[cf])[keep]
    present[pi, gi] = True
    # position of each row within its perturbation's rows (table order)
    srt = np.argsort(pi, kind="stable")
    counts = np.bincount(pi, minlength=P)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.empty_like(srt)
    pos[srt] = np.arange(srt.size) - np.repeat(starts, counts)
    order[pi, gi] = pos
    return DETable(lfc=lfc, fdr=fdr, present=present, order=order)


def _significant(t: DETable, fdr: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return t.present & (t.fdr.astype(np.float32) < np.float32(fdr))


def _positions(t: DETable, sig: np.ndarray) -> np.ndarray:
    """Rank position (0-based) of each significant gene by decreasing |LFC|; large elsewhere."""
    a = np.abs(t.lfc)
    key = np.where(np.isnan(a), -np.inf, -a)  # polars sorts NaN first when descending
    key = np.where(sig, key, np.inf)
    idx = np.lexsort((t.order, key), axis=1)
    pos = np.empty_like(idx)
    rows = np.arange(idx.shape[0])[:, None]
    pos[rows, idx] = np.arange(idx.shape[1])[None, :]
    return pos


def overlap_at(inp, k: int | None = None, kind: str = "overlap") -> np.ndarray:
    """cell-eval's overlap_at_k / precision_at_k (``k=None``: N, the whole significant list)."""
    fdr = inp.option("fdr")
    rs, ps = _significant(inp.de_real, fdr), _significant(inp.de_pred, fdr)
    P = rs.shape[0]
    if not rs.any() or not ps.any():
        return np.zeros(P)
    if inp.excludes_target and inp.gene_mask is not None:
        rs = rs & inp.gene_mask
        ps = ps & inp.gene_mask
    rpos, ppos = _positions(inp.de_real, rs), _positions(inp.de_pred, ps)
    n = (rs if kind == "overlap" else ps).sum(axis=1)
    kk = n if not k else np.minimum(k, n)
    hit = rs & ps & (rpos < kk[:, None]) & (ppos < kk[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = hit.sum(axis=1) / kk
    out[kk == 0] = 0.0
    return out


def _mask_real_sig(inp):
    rs = _significant(inp.de_real, inp.option("fdr"))
    if inp.excludes_target and inp.gene_mask is not None:
        rs = rs & inp.gene_mask
    return rs


def de_direction_match(inp) -> np.ndarray:
    """Fraction of real significant genes whose predicted fold change has the same sign."""
    rs = _mask_real_sig(inp) & inp.de_pred.present
    same = np.sign(inp.de_real.lfc) == np.sign(inp.de_pred.lfc)
    n = rs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (same & rs).sum(axis=1) / n
    out[n == 0] = np.nan
    return out


def de_spearman_lfc_sig(inp) -> np.ndarray:
    """Spearman correlation of fold changes over the real significant genes."""
    rs = _mask_real_sig(inp)
    x = np.where(rs, inp.de_real.lfc, 0.0)
    y = np.where(rs & inp.de_pred.present, np.nan_to_num(inp.de_pred.lfc, nan=0.0), 0.0)
    out = row_pearson(np.nan_to_num(row_rank(x, rs)), np.nan_to_num(row_rank(y, rs)), rs)
    out[rs.sum(axis=1) < 2] = np.nan
    return out


def de_sig_genes_recall(inp) -> np.ndarray:
    """Fraction of real significant genes that are significant in the prediction."""
    rs = _mask_real_sig(inp)
    ps = _significant(inp.de_pred, inp.option("fdr"))
    n = rs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (rs & ps).sum(axis=1) / n
    out[n == 0] = np.nan
    return out


def _auc_inputs(inp):
    labels = _significant(inp.de_real, inp.option("fdr"))
    present = inp.de_real.present.copy()
    if inp.excludes_target and inp.gene_mask is not None:
        present &= inp.gene_mask
    q = np.where(inp.de_pred.present, inp.de_pred.fdr, 1.0)
    q = np.nan_to_num(q, nan=1.0).astype(np.float32)
    q = np.clip(q, np.float32(1e-10), np.float32(1.0))
    score = (-np.log10(q)).astype(np.float32).astype(np.float64)
    labels = labels & present
    return labels, score, present


def roc_auc(inp) -> np.ndarray:
    """Area under the ROC curve of predicted significance for real significance."""
    labels, score, present = _auc_inputs(inp)
    n_pos = labels.sum(axis=1)
    n_neg = present.sum(axis=1) - n_pos
    ranks = np.nan_to_num(row_rank(score, present))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ((ranks * labels).sum(axis=1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    out[(n_pos == 0) | (n_neg == 0)] = np.nan
    return out


def pr_auc(inp) -> np.ndarray:
    """Average precision (scikit-learn's definition) of predicted significance."""
    labels, score, present = _auc_inputs(inp)
    s = np.where(present, score, -np.inf)
    idx = np.argsort(-s, axis=1, kind="stable")
    rows = np.arange(s.shape[0])[:, None]
    ss = s[rows, idx]
    ll = labels[rows, idx].astype(float)
    tp = np.cumsum(ll, axis=1)
    n_pos = tp[:, -1]
    G = s.shape[1]
    # last index of each group of equal scores is a threshold
    last = np.ones_like(ss, dtype=bool)
    last[:, :-1] = ss[:, 1:] != ss[:, :-1]
    last &= np.isfinite(ss)
    prev_tp = np.zeros_like(tp)
    # tp at the previous threshold: carry forward the value at the last boundary
    tp_at = np.where(last, tp, np.nan)
    filled = pd.DataFrame(tp_at.T).ffill().to_numpy().T
    prev_tp[:, 1:] = np.nan_to_num(filled[:, :-1], nan=0.0)
    prec = tp / np.arange(1, G + 1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        contrib = np.where(last, (tp - prev_tp) * prec, 0.0).sum(axis=1) / n_pos
    n_neg = present.sum(axis=1) - n_pos
    contrib[(n_pos == 0) | (n_neg == 0)] = np.nan
    return contrib


def _overlap(k, kind):
    def fn(inp):
        return overlap_at(inp, k, kind)

    fn.__name__ = f"{kind}_at_{k or 'N'}"
    fn.__doc__ = f"cell-eval's {kind}_at_{k or 'N'}."
    return fn


_CE = "cell-eval"
_DE = frozenset({"de"})
for _kind in ("overlap", "precision"):
    for _k in (None, 50, 100, 200, 500):
        register(
            Metric(
                f"{_kind}_at_{_k or 'N'}", _overlap(_k, _kind), True, 1.0, _DE,
                f"{_kind} of the top {_k or 'N'} significant DE genes ranked by |LFC|"
                + (" (the challenge's DES)" if (_kind, _k) == ("overlap", None) else ""),
                _CE,
            ),
            overwrite=True,
        )
for _name, _fn, _desc in [
    ("de_direction_match", de_direction_match, "sign agreement of fold changes on real DE genes"),
    ("de_spearman_lfc_sig", de_spearman_lfc_sig, "Spearman correlation of fold changes on real DE genes"),
    ("de_sig_genes_recall", de_sig_genes_recall, "recall of real DE genes among predicted DE genes"),
    ("pr_auc", pr_auc, "average precision of predicted -log10 FDR for real DE genes"),
    ("roc_auc", roc_auc, "ROC AUC of predicted -log10 FDR for real DE genes"),
]:
    register(Metric(_name, _fn, True, 1.0, _DE, _desc, _CE), overwrite=True)
