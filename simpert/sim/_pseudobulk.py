"""Pseudobulk: sum the counts of cells per sample (perturbation x replicate by default)."""

from __future__ import annotations

import copy

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import Instance, check, fail
from ._engine import Design

__all__ = ["pseudobulk", "design_groups", "design_from_obs", "store_design", "batch_codes", "program_activity"]

_KEEP = ("perturbation", "is_control", "target", "guide", "replicate")


def design_from_obs(obs: pd.DataFrame, uns: dict) -> Design:
    """The engine's Design (group, guide, replicate codes) read from a simulated ``obs``."""
    tr = uns["truth"]
    perts = list(np.asarray(tr["perturbations"], dtype=object).astype(str))
    lookup = {name: i + 1 for i, name in enumerate(perts)}
    lookup[str(uns["control"])] = 0
    labels = obs["perturbation"].astype(str).to_numpy()
    try:
        group = np.fromiter((lookup[x] for x in labels), dtype=np.int64, count=len(labels))
    except KeyError as err:
        fail("adata", "an AnnData whose perturbations are those of its truth", err.args[0])
    guides = np.asarray(tr.get("guides", np.zeros(0)), dtype=object).astype(str)
    if guides.size and "guide" in obs:
        glook = {name: i for i, name in enumerate(guides)}
        gl = obs["guide"].astype(str).to_numpy()
        guide = np.fromiter((glook.get(x, -1) for x in gl), dtype=np.int64, count=len(gl))
    else:
        guide = np.full(len(labels), -1, dtype=np.int64)
    rep = obs["replicate"].to_numpy(dtype=np.int64) if "replicate" in obs else np.zeros(len(labels), np.int64)
    design = Design(group=group, guide=guide, replicate=rep, batch=batch_codes(obs, uns),
                    context=_codes(obs, tr, "context", "contexts", "context_offsets"))
    if "n_guides" in obs and "second_perturbation" in obs:
        design.no_guide = obs["n_guides"].to_numpy(dtype=np.int64) == 0
        lookup[""] = 0
        second = obs["second_perturbation"].astype(str).to_numpy()
        try:
            design.second_group = np.fromiter((lookup[x] for x in second), dtype=np.int64, count=len(second))
        except KeyError as err:
            fail("adata", "an AnnData whose second perturbations are those of its truth", err.args[0])
        glook = {name: i for i, name in enumerate(guides)}
        sgl = obs["second_guide"].astype(str).to_numpy() if "second_guide" in obs else np.full(len(second), "")
        design.second_guide = np.fromiter((glook.get(x, -1) for x in sgl), dtype=np.int64, count=len(sgl))
    return design


def batch_codes(obs: pd.DataFrame, uns: dict) -> np.ndarray | None:
    """Row of ``truth['batch_log2fc']`` of each cell (from ``obs['batch']``), or None."""
    return _codes(obs, uns["truth"], "batch", "batches", "batch_log2fc")


def _codes(obs: pd.DataFrame, tr: dict, column: str, names_key: str, array_key: str) -> np.ndarray | None:
    if array_key not in tr or column not in obs:
        return None
    names = [str(b) for b in np.asarray(tr[names_key], dtype=object)]
    lookup = {b: i for i, b in enumerate(names)}
    labels = obs[column].astype(str).to_numpy()
    try:
        return np.fromiter((lookup[x] for x in labels), dtype=np.int64, count=len(labels))
    except KeyError as err:
        fail("adata", f"an AnnData whose obs[{column!r}] holds the {names_key} of its truth ({', '.join(names)})",
             err.args[0])


def program_activity(obs: pd.DataFrame, uns: dict) -> np.ndarray | None:
    """Per-cell program activity (n x K) from ``obs['program_0']``, ..., or None without programs."""
    tr = uns["truth"]
    if "program_loadings" not in tr:
        return None
    K = np.asarray(tr["program_loadings"]).shape[0]
    cols = [f"program_{j}" for j in range(K)]
    if not all(c in obs for c in cols):
        return None
    return np.column_stack([obs[c].to_numpy(dtype=float) for c in cols]) if K else np.zeros((len(obs), 0))


def _sample_table(obs: pd.DataFrame, by: tuple) -> tuple[np.ndarray, pd.DataFrame]:
    keys = [obs[b] for b in by]
    frame = pd.DataFrame({b: k.to_numpy() for b, k in zip(by, keys)})
    for b in by:
        if isinstance(obs[b].dtype, pd.CategoricalDtype):
            frame[b] = pd.Categorical(obs[b].to_numpy(), categories=obs[b].cat.categories)
    grouped = frame.groupby(list(by), observed=True, sort=True)
    codes = grouped.ngroup().to_numpy()
    n_samples = int(codes.max()) + 1 if codes.size else 0
    first = np.full(n_samples, -1, dtype=np.int64)
    order = np.arange(len(codes))[::-1]
    first[codes[order]] = order
    cols = {}
    for c in list(by) + [c for c in _KEEP if c in obs and c not in by]:
        if c == "guide" and c not in by:
            continue
        vals = obs[c].iloc[first]
        if isinstance(obs[c].dtype, pd.CategoricalDtype):
            cols[c] = pd.Categorical(vals.to_numpy(), categories=obs[c].cat.categories).remove_unused_categories() \
                if c != "perturbation" else pd.Categorical(vals.to_numpy(), categories=obs[c].cat.categories)
        else:
            cols[c] = vals.to_numpy()
    sample_obs = pd.DataFrame(cols)
    sample_obs["n_cells"] = np.bincount(codes, minlength=n_samples).astype(np.int64)
    names = ["_".join(f"r{v}" if b == "replicate" else str(v) for b, v in zip(by, row))
             for row in sample_obs[list(by)].itertuples(index=False)]
    sample_obs.index = pd.Index(_unique(names))
    return codes, sample_obs


def _unique(names):
    seen = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}-{k}")
        seen[n] = k + 1
    return out


def design_groups(design: Design, uns: dict, by: tuple):
    """Sample codes and sample obs for a design's cells (used when drawing pseudobulk)."""
    from ._screen import _design_obs

    n = design.group.shape[0]
    dummy = {"size_factor": np.ones(n), "knockdown": np.zeros(n), "escaped": np.zeros(n, bool)}
    obs = _design_obs(design, uns, dummy)
    return _sample_table(obs, tuple(by))


def store_design(out: ad.AnnData, cell_obs: pd.DataFrame, sample: np.ndarray, by) -> None:
    """Keep the per-cell design of a pseudobulk AnnData in ``uns['simpert']['design']``."""
    rec = out.uns["simpert"]
    d = design_from_obs(cell_obs, rec)
    rec["design"] = {
        "group": d.group,
        "guide": d.guide,
        "replicate": d.replicate,
        "sample": np.asarray(sample, dtype=np.int64),
        "size_factor": cell_obs["size_factor"].to_numpy(dtype=float),
        "knockdown": cell_obs["knockdown"].to_numpy(dtype=float),
        "escaped": cell_obs["escaped"].to_numpy(dtype=bool),
        "by": np.asarray(list(by), dtype=str),
    }
    if d.batch is not None:
        rec["design"]["batch"] = d.batch
    if d.context is not None:
        rec["design"]["context"] = d.context
    if d.mixed:
        rec["design"].update(second_group=d.second_group, second_guide=d.second_guide, no_guide=d.no_guide,
                             knockdown2=cell_obs["second_knockdown"].to_numpy(dtype=float))
    act = program_activity(cell_obs, rec)
    if act is not None:
        rec["design"]["activity"] = act


def _pseudobulk_from_cells(X: np.ndarray, sample_obs: pd.DataFrame, var: pd.DataFrame, uns: dict) -> ad.AnnData:
    return ad.AnnData(X=np.asarray(X, dtype=np.int64), obs=sample_obs, var=var.copy(), uns={"simpert": copy.deepcopy(uns)})


def pseudobulk(adata: ad.AnnData, by=("perturbation", "replicate"), *, layer: str | None = None) -> ad.AnnData:
    """Sum counts per sample defined by the ``obs`` columns ``by``.

    Parameters
    ----------
    adata : AnnData
        Cells with integer counts in ``.X`` (or ``layers[layer]``).
    by : str or sequence of str, default ("perturbation", "replicate")
        Columns of ``adata.obs`` that define a sample.
    layer : str or None
        Layer holding the counts; ``.X`` when None.

    Returns
    -------
    AnnData
        Samples x genes, dense int64 counts; ``obs`` has the ``by`` columns, the kept columns
        ``perturbation``, ``is_control``, ``target``, ``replicate`` (``guide`` when in ``by``)
        and ``n_cells``; ``var`` and ``uns["simpert"]`` are carried over, and for simulated
        screens the per-cell design is kept in ``uns["simpert"]["design"]`` so that
        :func:`redraw` and :func:`expected_counts` work on the result.
    """
    check("adata", adata, Instance((ad.AnnData,), "an AnnData"))
    if isinstance(by, str):
        by = (by,)
    by = tuple(by)
    if not by:
        fail("by", "a non-empty sequence of obs column names", by)
    for b in by:
        if b not in adata.obs:
            fail("by", f"a sequence of columns of adata.obs ({', '.join(map(str, adata.obs.columns))})", by)
    if layer is not None and layer not in adata.layers:
        fail("layer", f"None or one of the layers ({', '.join(adata.layers.keys())})", layer)
    X = adata.X if layer is None else adata.layers[layer]
    codes, sample_obs = _sample_table(adata.obs, by)
    n_samples = len(sample_obs)
    ind = sp.csr_matrix((np.ones(adata.n_obs, dtype=np.int64), (codes, np.arange(adata.n_obs))),
                        shape=(n_samples, adata.n_obs))
    if sp.issparse(X):
        Xs = sp.csr_matrix(X)
        if Xs.dtype.kind == "f":
            if Xs.data.size and not np.all(Xs.data == np.round(Xs.data)):
                fail("adata", "an AnnData with integer counts", "non-integer values")
            Xs = Xs.astype(np.int64)
        summed = (ind @ Xs.astype(np.int64)).toarray()
    else:
        Xd = np.asarray(X)
        if Xd.dtype.kind == "f":
            if not np.all(Xd == np.round(Xd)):
                fail("adata", "an AnnData with integer counts", "non-integer values")
        summed = np.asarray(ind @ Xd.astype(np.int64))
    uns = copy.deepcopy(dict(adata.uns))
    out = ad.AnnData(X=summed.astype(np.int64), obs=sample_obs, var=adata.var.copy(), uns=uns)
    rec = out.uns.get("simpert")
    if isinstance(rec, dict) and "count_model" in rec and "design" not in rec and \
            {"size_factor", "knockdown", "escaped"} <= set(adata.obs.columns):
        store_design(out, adata.obs, codes, by)
    return out
