"""Wilcoxon DE of a screen stored on disk, read a block of cells at a time.

The same table as :func:`simpert.de.wilcoxon` on the loaded screen, without loading it:

1. one pass over the rows gives every cell's total (the median total is the default
   normalisation target) and whether the values are integers (``normalize="auto"``);
2. the control cells are read once and kept, log-normalised;
3. the perturbations are taken in batches of at most ``chunk_cells`` cells, in category
   order; each batch's rows are read and tested against the control cells with the
   in-memory kernel. A perturbation's test involves only its own cells and the control's,
   so every row of the table is the one the in-memory call gives.

Memory: the control cells plus one batch (not the screen). Batches run on Dask workers when
a client (or ``n_workers``) is given; the control matrix is sent to each worker once.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._backed import read_meta, read_rows, row_ranges
from .._validation import fail

__all__ = ["wilcoxon_stored", "wilcoxon_rows"]


def _scan(path: str, start: int, stop: int, layer):
    """Worker task: row totals and whether every value of rows [start, stop) is an integer."""
    from ._wilcoxon import _is_integer_valued

    X = read_rows(path, start, stop, layer)
    return np.asarray(X.sum(axis=1, dtype=np.float64)).ravel(), _is_integer_valued(X), \
        bool(X.nnz == 0 or (np.all(np.isfinite(X.data)) and X.data.min() >= 0))


def _rows(path: str, rows: np.ndarray, layer, chunk: int) -> sp.csr_matrix:
    """Rows ``rows`` of a stored matrix (any order, repeats allowed), read by the row ranges
    that hold them."""
    uniq, inv = np.unique(rows, return_inverse=True)
    if uniq.size == 0:
        return None
    parts = []
    lo = 0
    while lo < uniq.size:
        a = int(uniq[lo])
        hi = int(np.searchsorted(uniq, a + chunk, side="left"))
        b = int(uniq[hi - 1]) + 1
        block = read_rows(path, a, b, layer)
        parts.append(block[uniq[lo:hi] - a])
        lo = hi
    X = sp.vstack(parts, format="csr")
    return X if np.array_equal(inv, np.arange(uniq.size)) else X[inv]


def _prepare(X, rows: np.ndarray, norm) -> sp.csr_matrix:
    """Log-normalised rows: ``norm`` is ``("wilcoxon", do_norm, target_sum)`` (as
    :func:`simpert.de.wilcoxon` normalises) or ``("scale", scale, cols)`` (each row times
    ``scale[row]`` then log1p, ``scale`` None for values taken as they are; columns
    ``cols``, as ``simpert.metrics.evaluate`` prepares its matrices)."""
    from ._wilcoxon import _lognorm

    if norm[0] == "wilcoxon":
        _, do_norm, ts = norm
        Xl = _lognorm(X, ts) if do_norm else sp.csr_matrix(X, dtype=np.float64, copy=True)
    else:
        _, scale, cols = norm
        Xl = sp.csr_matrix(X[:, cols], dtype=np.float64, copy=True)
        if scale is not None:
            Xl.data *= np.repeat(scale[rows], np.diff(Xl.indptr))
            np.log1p(Xl.data, out=Xl.data)
    Xl.eliminate_zeros()
    return Xl


def _batch(path: str, rows: np.ndarray, codes: np.ndarray, ctrl, groups, ref: int, pert_idx, fdr, genes,
           layer, chunk: int, norm):
    """Worker task: the table of the perturbations ``pert_idx`` (cells ``rows``) vs control."""
    from ._wilcoxon import _rank_tests

    Xb = _prepare(_rows(path, rows, layer, chunk), rows, norm) if rows.size else \
        sp.csr_matrix((0, ctrl.shape[1]))
    X = sp.vstack([ctrl, Xb], format="csr")
    c = np.concatenate([np.full(ctrl.shape[0], ref, dtype=np.int64), codes])
    return _rank_tests(X, c, groups, ref, pert_idx, fdr, genes)


def _map(fn, args_list, cl):
    if cl is None:
        return [fn(*a) for a in args_list]
    futures = [cl.submit(fn, *a, pure=False) for a in args_list]
    out = []
    for f in futures:
        out.append(f.result())
        f.release()
    return out


def wilcoxon_rows(path: str, rows: np.ndarray, codes: np.ndarray, groups, ref: int, fdr: float, genes, *,
                  layer=None, chunk_cells: int = 200_000, norm=("wilcoxon", True, 1e4), cl=None) -> pd.DataFrame:
    """The Wilcoxon table of a virtual screen: stored rows ``rows`` (repeats allowed) with group
    ``codes`` (labels ``groups``; ``ref`` the control; -1 ignored), every non-control group
    tested in batches of at most ``chunk_cells`` cells.

    Parameters
    ----------
    path : str
    rows, codes : ndarray of int
    groups : ndarray of str
    ref : int
    fdr : float
    genes : sequence of str
        Column names of the table (the columns ``norm`` keeps).
    layer : str, optional
    chunk_cells : int, default 200000
    norm : tuple
        See :func:`_prepare`.
    cl : distributed.Client or None

    Returns
    -------
    DataFrame
        :func:`simpert.de.wilcoxon`'s table.
    """
    pert_idx = np.array([i for i in range(len(groups)) if i != ref], dtype=np.int64)
    ctrl_rows = rows[codes == ref]
    ctrl = _prepare(_rows(path, ctrl_rows, layer, chunk_cells), ctrl_rows, norm)
    sizes = np.bincount(codes[codes >= 0], minlength=len(groups))
    batches, cur, cur_n = [], [], 0
    for g in pert_idx:  # whole perturbations, in category order
        if cur and cur_n + sizes[g] > chunk_cells:
            batches.append(cur)
            cur, cur_n = [], 0
        cur.append(int(g))
        cur_n += int(sizes[g])
    if cur:
        batches.append(cur)
    ctrl_ref = cl.scatter(ctrl, broadcast=True) if cl is not None else ctrl
    norm_ref = norm
    if cl is not None and norm[0] == "scale" and norm[1] is not None:
        norm_ref = ("scale", cl.scatter(norm[1], broadcast=True), norm[2])
    args = []
    for b in batches:
        b = np.asarray(b, dtype=np.int64)
        sel = np.flatnonzero(np.isin(codes, b))
        args.append((path, rows[sel], codes[sel], ctrl_ref, groups, ref, b, fdr, pd.Index(genes), layer,
                     chunk_cells, norm_ref))
    return pd.concat(_map(_batch, args, cl), ignore_index=True)


def wilcoxon_stored(path, *, control: str, groupby: str, fdr: float, layer, normalize, target_sum,
                    chunk_cells: int, client=None, n_workers: int | None = None) -> pd.DataFrame:
    """:func:`simpert.de.wilcoxon` of a stored screen (arguments as there; validated by it)."""
    from .._dask import dask_client

    path = Path(path)
    obs, var, _, n = read_meta(path, name="adata")
    if groupby not in obs.columns:
        fail("groupby", f"a column of adata.obs ({', '.join(map(str, obs.columns))})", groupby)
    from ._wilcoxon import _groups

    groups, codes, ref = _groups(obs[groupby], control, groupby)
    spath = str(path)
    serial = client == "serial" or (client is None and n_workers is None)
    with (dask_client(client, n_workers) if not serial else nullcontext()) as cl:
        scans = _map(_scan, [(spath, a, b, layer) for a, b in row_ranges(n, chunk_cells)], cl)
        totals = np.concatenate([s[0] for s in scans]) if scans else np.zeros(0)
        if not all(s[2] for s in scans):
            fail("adata", "expression that is finite and non-negative", "negative or non-finite values")
        do_norm = all(s[1] for s in scans) if normalize == "auto" else bool(normalize)
        ts = float(np.median(totals)) if target_sum is None else float(target_sum)
        return wilcoxon_rows(spath, np.arange(n), codes, groups, ref, fdr, var.index, layer=layer,
                             chunk_cells=chunk_cells, norm=("wilcoxon", do_norm, ts), cl=cl)
