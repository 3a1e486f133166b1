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

Deliberate difference: pr_auc and roc_auc accumulate in float64. cell-eval passes float32
labels to scikit-learn, whose curves then follow float32, so its values carry rounding of
order 1e-7 to 1e-6 when thousands of genes are scored (equal to 1e-9 on small tables).

Speed: only significant genes are ranked (one lexsort per table and threshold, cached on
the :class:`DETable`), top-k lists are intersected through a boolean mark array, and
the AUCs come from one sort of each score row and binary searches of the positives.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._input import DETable
from ._registry import Metric, register

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
    turned into Python objects row by row. Polars columns are mapped through an Enum of
    ``names`` (one hash pass in polars) when the names are distinct.
    """
    names = [str(x) for x in names]
    target = pd.Index(names)
    if isinstance(series, pd.Series):
        cat = pd.Categorical(series.astype(str))
        lut = target.get_indexer(cat.categories)
        return np.where(cat.codes >= 0, lut[cat.codes], -1)
    import polars as pl

    s = series.cast(pl.String)
    if s.len() > 1 and s[0] == s[1]:
        # a column grouped in runs (one block of rows per perturbation): map the runs
        runs = s.rle().struct.unnest()
        if runs.height * 8 < s.len():
            lens = runs.get_column(runs.columns[0]).to_numpy()
            vals = runs.get_column(runs.columns[1]).cast(pl.String).to_list()
            return np.repeat(target.get_indexer(vals).astype(np.int32), lens)
    if target.is_unique and len(names) > 0:
        try:
            phys = s.cast(pl.Enum(names), strict=False).to_physical()
            return phys.cast(pl.Int32).fill_null(-1).to_numpy()
        except Exception:  # pragma: no cover - older polars without non-strict Enum casts
            pass
    uniq = s.unique().drop_nulls().to_list()
    lut = target.get_indexer(uniq)
    return s.replace_strict(uniq, lut.tolist(), default=-1, return_dtype=pl.Int64).to_numpy()


def _floats(series) -> np.ndarray:
    if isinstance(series, pd.Series):
        return series.to_numpy(dtype=float)
    import polars as pl

    return series.cast(pl.Float64).to_numpy()


def _table_order(pi, gi, P, G):
    """Dense position of each row within its perturbation's rows, or None when implicit.

    None when, for every perturbation, its rows list distinct genes in increasing column
    order: then ranking ties by table order and by gene index agree.
    """
    grouped = pi.size < 2 or bool(np.all(pi[1:] >= pi[:-1]))
    srt = None if grouped else np.argsort(pi, kind="stable")
    ps = pi if grouped else pi[srt]
    gs = gi if grouped else gi[srt]
    same = ps[1:] == ps[:-1]
    if not np.any(same & (gs[1:] <= gs[:-1])):
        return None
    counts = np.bincount(pi, minlength=P)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(pi.size) - np.repeat(starts, counts)
    order = np.full(P * G, G, dtype=np.int32)
    flat = ps.astype(np.int64) * G + gs
    order[flat] = pos
    return order.reshape(P, G)


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
        Fold changes and adjusted p-values stored as float32 (as cell-eval stores them);
        the table order is stored only when it differs from the gene order.
    """
    if not isinstance(frame, pd.DataFrame) and not (hasattr(frame, "columns") and hasattr(frame, "height")):
        raise TypeError(f"parameter 'de' must hold pandas or polars DataFrames; got {type(frame).__name__}")
    cp, cg, cl, cf = (_col(frame, k) for k in ("perturbation", "gene", "log2fc", "padj"))
    P, G = len(perturbations), len(genes)
    pi = _codes(frame[cp], perturbations)
    gi = _codes(frame[cg], genes)
    keep = (pi >= 0) & (gi >= 0)
    full = bool(keep.all())
    if not full:
        pi, gi = pi[keep], gi[keep]
    lfc_rows, fdr_rows = _floats(frame[cl]), _floats(frame[cf])
    if not full:
        lfc_rows, fdr_rows = lfc_rows[keep], fdr_rows[keep]
    flat = pi.astype(np.int64) * G + gi
    if flat.size == P * G and np.array_equal(flat, np.arange(P * G)):
        # complete table in (perturbation, gene) order: no scatter needed
        lfc = lfc_rows.astype(np.float32).reshape(P, G)
        fdr = fdr_rows.astype(np.float32).reshape(P, G)
        present = np.ones((P, G), dtype=bool)
        return DETable(lfc=lfc, fdr=fdr, present=present, order=None)
    lfc = np.full(P * G, np.nan, dtype=np.float32)
    fdr = np.full(P * G, np.nan, dtype=np.float32)
    present = np.zeros(P * G, dtype=bool)
    lfc[flat] = lfc_rows
    fdr[flat] = fdr_rows
    present[flat] = True
    del flat
    order = _table_order(pi, gi, P, G)
    return DETable(lfc=lfc.reshape(P, G), fdr=fdr.reshape(P, G), present=present.reshape(P, G), order=order)


def _significant(t: DETable, fdr: float) -> np.ndarray:
    key = ("sig", float(fdr))
    out = t.cache.get(key)
    if out is None:
        with np.errstate(invalid="ignore"):
            out = t.present & (np.asarray(t.fdr).astype(np.float32) < np.float32(fdr))
        t.cache[key] = out
    return out


def _excluded(inp):
    """Target index per perturbation when the target gene is dropped, else None."""
    if inp.excludes_target and np.any(inp.targets >= 0):
        return np.asarray(inp.targets, dtype=np.int64)
    return None


def _ranking(t: DETable, fdr: float, targets):
    """Significant genes of each perturbation ranked by decreasing |LFC|.

    Returns ``(p, g, pos, n)``: row and column of every significant entry (the target
    gene of its row dropped when ``targets`` is given), its 0-based rank position within
    its row (NaN fold changes first, as polars sorts them when descending; ties in table
    order), and the number of significant genes per row. Cached on the table.
    """
    key = ("rank", float(fdr), None if targets is None else targets.tobytes())
    hit = t.cache.get(key)
    if hit is not None:
        return hit
    P = t.lfc.shape[0]
    p, g = np.nonzero(_significant(t, fdr))
    if targets is not None:
        keep = g != targets[p]
        p, g = p[keep], g[keep]
    a = np.abs(t.lfc[p, g])
    k = np.where(np.isnan(a), -np.inf, -a)
    ordv = g if t.order is None else t.order[p, g]
    idx = np.lexsort((ordv, k, p))
    n = np.bincount(p, minlength=P)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    pos = np.empty(p.size, dtype=np.int64)
    pos[idx] = np.arange(p.size) - starts[p[idx]]
    hit = (p, g, pos, n)
    t.cache[key] = hit
    return hit


def overlap_at(inp, k: int | None = None, kind: str = "overlap") -> np.ndarray:
    """cell-eval's overlap_at_k / precision_at_k (``k=None``: N, the whole significant list).

    Works on the significant genes only: each list is ranked once per table (cached) and
    the top ``k`` of both lists are intersected through a boolean mark array.
    """
    fdr = inp.option("fdr")
    P, G = inp.de_real.lfc.shape
    if not _significant(inp.de_real, fdr).any() or not _significant(inp.de_pred, fdr).any():
        return np.zeros(P)
    tg = _excluded(inp)
    rp, rg, rpos, rn = _ranking(inp.de_real, fdr, tg)
    pp, pg, ppos, pn = _ranking(inp.de_pred, fdr, tg)
    n = rn if kind == "overlap" else pn
    kk = n if not k else np.minimum(k, n)
    rtop = rpos < kk[rp]
    ptop = ppos < kk[pp]
    mark = np.zeros(P * G, dtype=bool)
    mark[rp[rtop].astype(np.int64) * G + rg[rtop]] = True
    pt, gt = pp[ptop], pg[ptop]
    hits = mark[pt.astype(np.int64) * G + gt]
    cnt = np.bincount(pt[hits], minlength=P)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = cnt / kk
    out[kk == 0] = 0.0
    return out


def _real_sig(inp):
    """Entries (p, g) of the real significant genes (target dropped when excluded)."""
    p, g, _, n = _ranking(inp.de_real, inp.option("fdr"), _excluded(inp))
    return p, g, n


def de_direction_match(inp) -> np.ndarray:
    """Fraction of real significant genes whose predicted fold change has the same sign."""
    P = inp.n_perturbations
    p, g, _ = _real_sig(inp)
    pres = inp.de_pred.present[p, g]
    same = (np.sign(inp.de_real.lfc[p, g]) == np.sign(inp.de_pred.lfc[p, g])) & pres
    n = np.bincount(p, weights=pres, minlength=P)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.bincount(p, weights=same, minlength=P) / n
    out[n == 0] = np.nan
    return out


def _group_ranks(p, v, P):
    """Average ranks (1-based) of ``v`` within groups ``p``; groups holding NaN get NaN."""
    v = np.asarray(v, dtype=np.float64)
    idx = np.lexsort((v, p))
    ps, vs = p[idx], v[idx]
    n = np.bincount(p, minlength=P)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    # boundaries of runs of equal (group, value)
    new = np.ones(ps.size, dtype=bool)
    new[1:] = (ps[1:] != ps[:-1]) | (vs[1:] != vs[:-1])
    run = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    last = np.append(first[1:], ps.size) - 1
    avg = (first + last) / 2.0 - starts[ps[first]] + 1.0
    r = np.empty(ps.size)
    r[idx] = avg[run]
    bad = np.bincount(p, weights=np.isnan(v), minlength=P) > 0
    r[bad[p]] = np.nan
    return r


def _group_pearson(p, x, y, P):
    """Pearson correlation of ``x`` and ``y`` within groups ``p`` (NaN if constant)."""
    n = np.bincount(p, minlength=P).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = x - (np.bincount(p, weights=x, minlength=P) / n)[p]
        yc = y - (np.bincount(p, weights=y, minlength=P) / n)[p]
        nx = np.sqrt(np.bincount(p, weights=xc * xc, minlength=P))
        ny = np.sqrt(np.bincount(p, weights=yc * yc, minlength=P))
        r = np.bincount(p, weights=xc * yc, minlength=P) / (nx * ny)
    r = np.clip(r, -1.0, 1.0)
    r[(nx == 0) | (ny == 0) | ~np.isfinite(nx) | ~np.isfinite(ny)] = np.nan
    return r


def de_spearman_lfc_sig(inp) -> np.ndarray:
    """Spearman correlation of fold changes over the real significant genes."""
    P = inp.n_perturbations
    p, g, n = _real_sig(inp)
    x = inp.de_real.lfc[p, g].astype(np.float64)
    y = np.where(inp.de_pred.present[p, g], np.nan_to_num(inp.de_pred.lfc[p, g], nan=0.0), 0.0)
    rx = _group_ranks(p, x, P)
    ry = _group_ranks(p, y.astype(np.float64), P)
    out = _group_pearson(p, np.nan_to_num(rx), np.nan_to_num(ry), P)
    out[n < 2] = np.nan
    return out


def de_sig_genes_recall(inp) -> np.ndarray:
    """Fraction of real significant genes that are significant in the prediction."""
    P = inp.n_perturbations
    p, g, n = _real_sig(inp)
    ps = _significant(inp.de_pred, inp.option("fdr"))[p, g]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.bincount(p, weights=ps, minlength=P) / n
    out[n == 0] = np.nan
    return out


def _auc_inputs(inp):
    """Sorted score rows and the scores of the positives, shared by pr_auc and roc_auc.

    Scores are ``-log10`` of the predicted adjusted p-value (missing -> 1, clipped to
    [1e-10, 1]) in float32, as cell-eval computes them; genes absent from the real table
    (or excluded targets) get -inf so that they sort first and never reach a threshold.
    Cached on the predicted table.
    """
    tg = _excluded(inp)
    fdr = inp.option("fdr")
    key = ("auc", float(fdr), None if tg is None else tg.tobytes())
    hit = inp.de_pred.cache.get(key)
    if hit is not None and hit[0] is inp.de_real:
        return hit[1]
    present = inp.de_real.present
    if tg is not None:
        present = present.copy()
        rows = np.flatnonzero(tg >= 0)
        present[rows, tg[rows]] = False
    q = np.where(inp.de_pred.present, inp.de_pred.fdr, 1.0)
    q = np.nan_to_num(q, nan=1.0).astype(np.float32)
    q = np.clip(q, np.float32(1e-10), np.float32(1.0))
    score = (-np.log10(q)).astype(np.float32)
    del q
    score[~present] = -np.inf
    p, g, n_pos = _real_sig(inp)
    s_pos = score[p, g]
    n_present = present.sum(axis=1)
    score.sort(axis=1)
    res = (score, p, s_pos, n_pos, n_present)
    inp.de_pred.cache[key] = (inp.de_real, res)
    return res


def _row_counts(sorted_rows, p, s, P):
    """For every entry (row p, score s): #entries of the row < s and <= s."""
    lt = np.empty(p.size, dtype=np.int64)
    le = np.empty(p.size, dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(p, minlength=P))])
    idx = np.argsort(p, kind="stable")
    for row in np.flatnonzero(bounds[1:] > bounds[:-1]):  # one pass per perturbation
        sel = idx[bounds[row]:bounds[row + 1]]
        lt[sel] = np.searchsorted(sorted_rows[row], s[sel], side="left")
        le[sel] = np.searchsorted(sorted_rows[row], s[sel], side="right")
    return lt, le


def roc_auc(inp) -> np.ndarray:
    """Area under the ROC curve of predicted significance for real significance.

    The Mann-Whitney form: average rank of the positives among the scored genes.
    """
    score, p, s_pos, n_pos, n_present = _auc_inputs(inp)
    P, G = score.shape
    lt, le = _row_counts(score, p, s_pos, P)
    absent = G - n_present
    avg_rank = (lt - absent[p]) + (le - lt + 1) / 2.0
    n_neg = n_present - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (np.bincount(p, weights=avg_rank, minlength=P) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    out[(n_pos == 0) | (n_neg == 0)] = np.nan
    return out


def pr_auc(inp) -> np.ndarray:
    """Average precision (scikit-learn's definition) of predicted significance.

    ``AP = sum_t (R_t - R_{t-1}) P_t`` over decreasing distinct scores t; every positive
    at threshold t contributes ``TP(>= t) / #(score >= t)`` divided by the number of
    positives.
    """
    score, p, s_pos, n_pos, n_present = _auc_inputs(inp)
    P, G = score.shape
    lt, _ = _row_counts(score, p, s_pos, P)
    count_ge = G - lt  # entries with score >= s (absent ones are -inf)
    # positives with score >= s, within each row
    tp_ge = n_pos[p] - _below(p, s_pos, P)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.bincount(p, weights=tp_ge / count_ge, minlength=P) / n_pos
    n_neg = n_present - n_pos
    out[(n_pos == 0) | (n_neg == 0)] = np.nan
    return out


def _below(p, s, P):
    """Number of entries of the same group with a strictly smaller value."""
    idx = np.lexsort((s, p))
    ps, vs = p[idx], s[idx]
    n = np.bincount(p, minlength=P)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    new = np.ones(ps.size, dtype=bool)
    new[1:] = (ps[1:] != ps[:-1]) | (vs[1:] != vs[:-1])
    first = np.maximum.accumulate(np.where(new, np.arange(ps.size), 0))
    out = np.empty(ps.size, dtype=np.int64)
    out[idx] = first - starts[ps]
    return out


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
