"""``evaluate`` of screens stored on disk (``.zarr`` stores, ``.h5ad`` files), never loaded.

Everything :func:`simpert.metrics.evaluate` needs from the cells is a mean or a Wilcoxon
test over a set of rows: the profiles of the real screen, of each half of each split-half
replicate, of the prediction; the DE tables of the real screen, the prediction, the
baseline's resampled cells and each half. Here these are computed by reading the stored
matrix a block of rows at a time (on Dask when asked), with the rows drawn exactly as the
in-memory path draws them (from the labels, with the same seeds), so the values equal the
in-memory ones up to the order of floating-point sums.

Metrics that read cells directly (``needs`` "cells", "real_cells" or "train") are not run
on stored screens; they are reported in ``errors``.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._backed import read_meta, read_rows, row_ranges
from .._validation import fail

__all__ = ["StoredSide", "stored_side", "group_sums", "stored_de", "client_for"]


@dataclass
class StoredSide:
    """A stored AnnData reduced to its labels, genes, row totals and kind (nothing loaded)."""

    path: str
    labels: np.ndarray
    genes: pd.Index
    kind: str
    is_cells: bool
    targets: dict
    totals: np.ndarray
    layer: str | None
    chunk: int


def _scan(path: str, a: int, b: int, layer, name: str, prediction: bool):
    from ._evaluate import detect_input_type

    X = read_rows(path, a, b, layer)
    kind = detect_input_type(X, name=name, prediction=prediction)
    hi = float(X.data.max()) if X.nnz else 0.0
    return np.asarray(X.sum(axis=1, dtype=np.float64)).ravel(), kind, hi


def client_for(client, n_workers):
    """A context giving a Dask client, or None (in process) when neither is given."""
    if client == "serial" or (client is None and n_workers is None):
        return nullcontext()
    from .._dask import dask_client

    return dask_client(client, n_workers)


def _map(fn, args_list, cl):
    from ..de._wilcoxon_stream import _map as m

    return m(fn, args_list, cl)


def stored_side(path, name, key, control, input_type, target_key, layer, chunk, cl) -> StoredSide:
    """Read ``obs``/``var`` of a stored AnnData and scan its rows once (totals, kind)."""
    obs, var, _, n = read_meta(path, name=name)
    if key not in obs.columns:
        fail("perturbation_key", f"a column of {name}.obs ({', '.join(map(str, obs.columns))})", key)
    lab = obs[key]
    if lab.isna().any():
        fail(key, f"a label for every row of {name}", f"{int(lab.isna().sum())} missing labels")
    labels = lab.astype(str).to_numpy()
    genes = pd.Index(np.asarray(var.index, dtype=str))
    if not genes.is_unique:
        fail(name, "unique gene names", f"{int(genes.duplicated().sum())} repeated names")
    scans = _map(_scan, [(str(path), a, b, layer, name, name == "pred") for a, b in row_ranges(n, chunk)], cl)
    kinds = {s[1] for s in scans}
    found = "lognorm" if "lognorm" in kinds else "counts"
    hi = max((s[2] for s in scans), default=0.0)
    if found == "lognorm" and hi > 20:
        fail(name, "counts (integers) or log1p-normalised values (decimals up to about 14); values "
                   "with decimals above 20 look normalised but not log-transformed", f"maximum {hi:g}")
    if input_type is not None and input_type != found:
        fail("input_type", f"{found!r} for {name} (its values are "
                           f"{'integers' if found == 'counts' else 'decimals'})", input_type)
    targets = {}
    if target_key is not None:
        if target_key not in obs.columns:
            fail("target_key", f"a column of {name}.obs", target_key)
        t = obs[[key, target_key]].astype(str).drop_duplicates(key)
        targets = dict(zip(t[key], t[target_key]))
    totals = np.concatenate([s[0] for s in scans]) if scans else np.zeros(0)
    is_cells = bool(pd.Series(labels).duplicated().any())
    return StoredSide(str(path), labels, genes, found, is_cells, targets, totals, layer, chunk)


def row_scale(side: StoredSide, target_sum):
    """Per-row factor of the log-normalisation (None for log-normalised input), as
    ``simpert.metrics.evaluate`` computes it in memory."""
    if side.kind != "counts":
        return None
    tot = side.totals
    ts = target_sum
    if ts == "median":
        ts = float(np.median(tot[tot > 0])) if np.any(tot > 0) else 1.0
    return np.divide(ts, tot, out=np.zeros_like(tot, dtype=float), where=tot > 0)


def _sums(path, a, b, layer, cols, scale, weights):
    """Worker task: ``W[:, a:b] @ normalised rows [a, b)`` for every weight matrix ``W``."""
    from ..de._wilcoxon_stream import _prepare

    used = [W[:, a:b] for W in weights]
    if not any(u.nnz for u in used):
        return [None] * len(weights)
    X = _prepare(read_rows(path, a, b, layer), np.arange(a, b), ("scale", scale, cols))
    return [np.asarray((u @ X).todense()) if u.nnz else None for u in used]


def group_sums(side: StoredSide, cols: np.ndarray, scale, sets, cl) -> list[np.ndarray]:
    """Sums of normalised rows per group, for several row sets at once (one pass).

    Parameters
    ----------
    side : StoredSide
    cols : ndarray of int
        Columns (genes) kept, in order.
    scale : ndarray or None
        From :func:`row_scale`.
    sets : list of (rows, codes, n_groups)
        Row indices (repeats allowed) and their group code.
    cl : distributed.Client or None

    Returns
    -------
    list of ndarray, shape (n_groups, len(cols)) each
    """
    n = side.labels.size
    weights = []
    for rows, codes, k in sets:
        weights.append(sp.csc_matrix((np.ones(rows.size), (codes, rows)), shape=(k, n)))
    out = [np.zeros((k, cols.size)) for _, _, k in sets]
    if cl is not None:
        weights_ref = cl.scatter(weights, broadcast=True)
        scale_ref = cl.scatter(scale, broadcast=True) if scale is not None else None
    else:
        weights_ref, scale_ref = weights, scale
    for parts in _map(_sums, [(side.path, a, b, side.layer, cols, scale_ref, weights_ref)
                              for a, b in row_ranges(n, side.chunk)], cl):
        for o, part in zip(out, parts):
            if part is not None:
                o += part
    return out


def stored_de(side: StoredSide, rows: np.ndarray, labels: np.ndarray, control: str, cols: np.ndarray, genes,
              scale, cl) -> pd.DataFrame:
    """Wilcoxon table of the rows ``rows`` labelled ``labels`` (control first, then sorted
    labels, as ``evaluate`` builds its cell AnnData), normalised as ``evaluate`` does."""
    from ..de._wilcoxon_stream import wilcoxon_rows

    cats = [control] + sorted(set(labels) - {control})
    pos = {c: i for i, c in enumerate(cats)}
    codes = np.fromiter((pos[x] for x in labels), dtype=np.int64, count=len(labels))
    return wilcoxon_rows(side.path, np.asarray(rows, dtype=np.int64), codes, np.asarray(cats, dtype=object), 0,
                         0.05, genes, layer=side.layer, chunk_cells=side.chunk, norm=("scale", scale, cols), cl=cl)
