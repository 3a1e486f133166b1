"""Cell-level Wilcoxon (Mann-Whitney U) DE of every perturbation against control cells.

Reproduces the DE table that cell-eval builds with pdex (``pdex(adata, mode="ref",
is_log1p=True, epsilon=0)``, numba-mwu's Mann-Whitney kernels):

- input: log-normalised expression. cell-eval converts integer counts itself
  (``scanpy.pp.normalize_total`` to the median cell total, then ``log1p``) and uses data
  with decimals as they are; ``normalize="auto"`` does the same here (in float64);
- per perturbation and gene, the two-sided Mann-Whitney U test of the perturbation's cells
  against the control cells with the normal approximation, tie correction and continuity
  correction (``scipy.stats.mannwhitneyu(x, y, method="asymptotic")`` semantics, statistic
  ``U1`` of the perturbed cells), p-values clipped to [0, 1];
- Benjamini-Hochberg within each perturbation (``scipy.stats.false_discovery_control``);
- ``log2_fold_change = log2(expm1(mean log1p pert) / expm1(mean log1p ctrl))``, with 0 when
  both means are 0 and +-inf for one-sided zeros (cell-eval pins pdex's epsilon to 0);
  ``percent_change = (target_mean - ref_mean) / ref_mean``.

The ranks are never formed cell by cell: every (gene, distinct value) pair gets one integer
slot (exact ties, zero as its own slot per gene), control counts per slot give each
perturbed cell's "below + half tied" count by lookup, and the tie term
``sum (t^3 - t)`` of each combined sample is the control's plus corrections for the slots
the perturbation touches. The work is one sort of the non-zero entries plus ``bincount``
passes, vectorised over all perturbations, genes and cells.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import erfc

from .._validation import Instance, Integer, Interval, OneOf, check, fail

__all__ = ["WILCOXON_COLUMNS", "wilcoxon", "bh_rows"]

#: Output columns: cell-eval / pdex names first, then simpert's names.
WILCOXON_COLUMNS = [
    "target", "feature", "target_mean", "ref_mean", "target_membership", "ref_membership",
    "log2_fold_change", "percent_change", "p_value", "statistic", "fdr",
    "perturbation", "gene", "log2fc", "pvalue", "padj", "significant",
]


def bh_rows(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values within each row of ``p``.

    Parameters
    ----------
    p : ndarray, shape (P, G)
        P-values in [0, 1].

    Returns
    -------
    ndarray, shape (P, G)
        Adjusted p-values (the same arithmetic as ``scipy.stats.false_discovery_control``).
    """
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    m = p.shape[1]
    order = np.argsort(p, axis=1, kind="stable")
    ps = np.take_along_axis(p, order, axis=1)
    ps = ps * (m / np.arange(1, m + 1))
    ps = np.minimum.accumulate(ps[:, ::-1], axis=1)[:, ::-1]
    out = np.empty_like(ps)
    np.put_along_axis(out, order, np.clip(ps, 0, 1), axis=1)
    return out


def _groups(column, control: str, groupby: str):
    """Group labels, each row's code (-1: empty or missing label) and the control's code."""
    labels = pd.Categorical(column)
    drop = [c for c in labels.categories if c == "" or pd.isna(c)]
    if drop:
        labels = labels.remove_categories(drop)
    groups = np.asarray(labels.categories)
    codes = np.asarray(labels.codes, dtype=np.int64)
    hit = np.flatnonzero(groups == control)
    if hit.size != 1:
        fail("control", f"a label of adata.obs[{groupby!r}]", control)
    if groups.size < 2:
        fail(groupby, f"a column with at least one group besides the control {control!r}", list(groups))
    return groups, codes, int(hit[0])


def _is_integer_valued(x) -> bool:
    data = x.data if sp.issparse(x) else np.asarray(x)
    if data.size == 0:
        return True
    frac = np.modf(np.asarray(data, dtype=np.float64))[0]
    return not bool(np.any(frac > 1e-3))


def _lognorm(x, target_sum):
    """scanpy's normalize_total + log1p in float64 (CSR in, CSR out)."""
    x = sp.csr_matrix(x, dtype=np.float64, copy=True)
    totals = np.asarray(x.sum(axis=1)).ravel()
    if target_sum is None:
        target_sum = float(np.median(totals))
    factor = totals / target_sum
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    x.data = np.where(factor[rows] > 0, x.data / np.where(factor[rows] > 0, factor[rows], 1.0), 0.0)
    np.log1p(x.data, out=x.data)
    return x


def wilcoxon(
    adata,
    *,
    control: str = "control",
    groupby: str = "perturbation",
    fdr: float = 0.05,
    layer: str | None = None,
    normalize="auto",
    target_sum: float | None = None,
    chunk_cells: int = 200_000,
    client=None,
    n_workers: int | None = None,
) -> pd.DataFrame:
    """Wilcoxon rank-sum DE of each perturbation vs control cells, as cell-eval computes it.

    Parameters
    ----------
    adata : AnnData, or path of a ``.zarr`` store or ``.h5ad`` file
        Cells x genes. Expression is read from ``adata.layers[layer]`` or ``adata.X``. A
        path is read a block of cells at a time and never loaded: the control cells are
        kept and the perturbations are tested in batches of at most ``chunk_cells`` cells
        (same table as on the loaded screen; memory: the control cells plus one batch).
    control : str, default "control"
        Label of the control cells in ``adata.obs[groupby]``.
    groupby : str, default "perturbation"
        Column of ``adata.obs`` defining the groups (empty strings and NaN are ignored).
    fdr : float, default 0.05
        Threshold of the ``significant`` column (``padj < fdr``).
    layer : str, optional
        Layer to use instead of ``.X``.
    normalize : {"auto", True, False}, default "auto"
        "auto" follows cell-eval: integer-valued data are normalised (each cell to
        ``target_sum``) and log1p-transformed, data with decimals are taken as already
        log-normalised. ``True`` always normalises, ``False`` never does.
    target_sum : float, optional
        Normalisation total; default the median cell total (scanpy's and cell-eval's
        default). The fold changes depend on it; the p-values do not, except through
        floating-point rounding of values that tie exactly (ties are taken as the floats
        compare, as in cell-eval).
    chunk_cells : int, default 200000
        With a path: rows read at a time, and cells per batch of perturbations.
    client : distributed.Client, str or None
        With a path: run the batches on this Dask client (or scheduler address); None with
        ``n_workers`` None reads in this process.
    n_workers : int, optional
        With a path and no client: batches on a LocalCluster of that many processes.

    Returns
    -------
    DataFrame
        One row per (perturbation, gene), perturbations in category order (control left out),
        genes in ``adata.var_names`` order, columns :data:`WILCOXON_COLUMNS`: cell-eval's
        ``target, feature, target_mean, ref_mean, target_membership, ref_membership,
        log2_fold_change, percent_change, p_value, statistic, fdr`` (means in count space,
        ``expm1`` of the mean log1p expression) and simpert's ``perturbation, gene, log2fc,
        pvalue, padj, significant``.

    Raises
    ------
    ValueError
        When ``groupby`` is missing, the control label is absent, there is no other group,
        or the log-normalised expression has negative or non-finite values.
    """
    check("fdr", fdr, Interval(0, 1))
    check("normalize", normalize, OneOf(("auto", True, False)))
    check("target_sum", target_sum, Interval(0, None, closed="neither", allow_none=True))
    check("control", control, Instance((str,), label="a str"))
    check("chunk_cells", chunk_cells, Integer(1))
    if isinstance(adata, (str, Path)):
        from ._wilcoxon_stream import wilcoxon_stored

        return wilcoxon_stored(adata, control=control, groupby=groupby, fdr=fdr, layer=layer, normalize=normalize,
                               target_sum=target_sum, chunk_cells=chunk_cells, client=client, n_workers=n_workers)
    if not hasattr(adata, "obs") or not hasattr(adata, "X"):
        fail("adata", "an AnnData object", adata, exc=TypeError)
    if groupby not in adata.obs.columns:
        fail("groupby", f"a column of adata.obs ({', '.join(map(str, adata.obs.columns))})", groupby)
    if layer is not None and layer not in adata.layers:
        fail("layer", f"a layer of adata ({', '.join(adata.layers.keys()) or 'none'})", layer)
    X = adata.layers[layer] if layer is not None else adata.X
    if X is None:
        fail("adata", "an AnnData with an expression matrix", adata)

    groups, codes, ref = _groups(adata.obs[groupby], control, groupby)
    pert_idx = np.array([i for i in range(groups.size) if i != ref], dtype=np.int64)

    do_norm = _is_integer_valued(X) if normalize == "auto" else bool(normalize)
    Xl = _lognorm(X, target_sum) if do_norm else sp.csr_matrix(X, dtype=np.float64, copy=True)
    Xl.eliminate_zeros()
    if Xl.nnz and (not np.all(np.isfinite(Xl.data)) or Xl.data.min() < 0):
        fail("adata", "log-normalised expression that is finite and non-negative", adata)

    return _rank_tests(Xl, codes, groups, ref, pert_idx, fdr, adata.var_names)


def _rank_tests(Xl, codes, groups, ref, pert_idx, fdr, var_names) -> pd.DataFrame:
    """The table of :func:`wilcoxon` for the groups ``pert_idx`` against group ``ref``.

    ``Xl`` is log-normalised CSR (explicit zeros removed), ``codes`` the group of each row
    (-1: ignored), ``groups`` the labels of the codes.
    """
    G = Xl.shape[1]
    P = pert_idx.size
    # group index per cell: 0..P-1 perturbations, P control, -1 ignored
    gmap = np.full(groups.size + 1, -1, dtype=np.int64)
    gmap[pert_idx] = np.arange(P)
    gmap[ref] = P
    cg = gmap[codes]  # codes == -1 -> gmap[-1] == -1
    n_g = np.bincount(cg[cg >= 0], minlength=P + 1)
    n_c = int(n_g[P])
    n_p = n_g[:P]

    # Group means of log1p expression (count space via expm1 below).
    ind = sp.csr_matrix((np.ones(int((cg >= 0).sum())), (cg[cg >= 0], np.flatnonzero(cg >= 0))),
                        shape=(P + 1, Xl.shape[0]))
    sums = np.asarray((ind @ Xl).todense())
    with np.errstate(invalid="ignore", divide="ignore"):
        logmean = sums / n_g[:, None]
    means = np.expm1(logmean)
    tmean, rmean = means[:P], means[P]

    # ---- exact ranks via (gene, value) slots
    coo = Xl.tocoo()
    r, j, v = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    grp = cg[r]
    sel = grp >= 0
    r, j, v, grp = r[sel], j[sel], v[sel], grp[sel]
    order = np.lexsort((grp, v, j))  # by gene, then value, then group
    j, v, grp = j[order], v[order], grp[order]
    new = np.ones(j.size, dtype=bool)
    if j.size > 1:
        new[1:] = (j[1:] != j[:-1]) | (v[1:] != v[:-1])
    gid = np.cumsum(new) - 1  # distinct (gene, value) id
    d = np.bincount(j[new], minlength=G)  # distinct non-zero values per gene
    first = np.cumsum(d) - d
    zero_key = first + np.arange(G)
    key = gid + j + 1
    S = int(d.sum() + G)
    gene_of_slot = np.repeat(np.arange(G), d + 1)

    is_c = grp == P
    cc = np.bincount(key[is_c], minlength=S).astype(np.int64)
    nnz_c = np.bincount(j[is_c], minlength=G)
    cc[zero_key] = n_c - nnz_c
    cum = np.cumsum(cc) - cc
    below = cum - cum[zero_key][gene_of_slot]

    ip = ~is_c
    kp, jp, gp = key[ip], j[ip], grp[ip]
    cell = gp * G + jp
    contrib = below[kp] + 0.5 * cc[kp]
    U1 = np.bincount(cell, weights=contrib, minlength=P * G).reshape(P, G)
    nnz_p = np.bincount(cell, minlength=P * G).reshape(P, G)
    zeros_p = n_p[:, None] - nnz_p
    cc0 = cc[zero_key][None, :]
    U1 = U1 + zeros_p * 0.5 * cc0

    def f(t):
        return t * t * t - t

    tie_c = np.bincount(gene_of_slot, weights=f(cc).astype(np.float64), minlength=G)
    tie = np.broadcast_to(tie_c, (P, G)).astype(np.float64)
    if kp.size:
        # entries are sorted by (slot, group): runs of equal (slot, group) are contiguous
        start = np.ones(kp.size, dtype=bool)
        start[1:] = (kp[1:] != kp[:-1]) | (gp[1:] != gp[:-1])
        first_idx = np.flatnonzero(start)
        cp = np.diff(np.append(first_idx, kp.size))
        slot = kp[first_idx]
        pp = gp[first_idx]
        delta = (f(cc[slot] + cp) - f(cc[slot])).astype(np.float64)
        tie = tie + np.bincount(pp * G + gene_of_slot[slot], weights=delta,
                                minlength=P * G).reshape(P, G)
    tie = tie + (f(cc0 + zeros_p) - f(cc0)).astype(np.float64)

    n1 = n_p[:, None].astype(np.float64)
    n2 = float(n_c)
    n = n1 + n2
    U2 = n1 * n2 - U1
    U = np.maximum(U1, U2)
    mu = n1 * n2 / 2.0
    denom = n * (n - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_inner = (n + 1.0) - tie / denom
        s_sq = n1 * n2 / 12.0 * var_inner
        z = (U - mu - 0.5) / np.sqrt(np.where(s_sq > 0, s_sq, 1.0))
        pval = 0.5 * erfc(z / np.sqrt(2.0)) * 2.0
    pval = np.where(s_sq > 0, np.clip(pval, 0.0, 1.0), 1.0)
    padj = bh_rows(pval)

    with np.errstate(invalid="ignore", divide="ignore"):
        lfc = np.log2(tmean / rmean[None, :])
        pc = (tmean - rmean[None, :]) / rmean[None, :]
    lfc = np.where(np.isnan(lfc), 0.0, lfc)
    pc = np.where(np.isnan(pc), 0.0, pc)

    names = groups[pert_idx].astype(object)
    genes = np.asarray(var_names).astype(object)
    pert_col = np.repeat(names, G)
    gene_col = np.tile(genes, P)
    out = pd.DataFrame({
        "target": pert_col,
        "feature": gene_col,
        "target_mean": tmean.ravel(),
        "ref_mean": np.tile(rmean, P),
        "target_membership": np.repeat(n_p, G),
        "ref_membership": np.full(P * G, n_c),
        "log2_fold_change": lfc.ravel(),
        "percent_change": pc.ravel(),
        "p_value": pval.ravel(),
        "statistic": U1.ravel(),
        "fdr": padj.ravel(),
    })
    out["perturbation"] = pert_col
    out["gene"] = gene_col
    out["log2fc"] = out["log2_fold_change"]
    out["pvalue"] = out["p_value"]
    out["padj"] = out["fdr"]
    out["significant"] = out["fdr"].to_numpy() < fdr
    return out
