"""Screens larger than memory: cells drawn in chunks on Dask and written to Zarr, read back in chunks.

The count engine draws every cell from its own stream (:func:`simpert.sim._engine.draw_rows`),
so a chunk of cells can be drawn anywhere, in any order, and the written counts are the bytes
of the in-memory screen for the same seed, whatever the chunk size and the number of workers.

- :func:`write_zarr` draws chunks on a Dask cluster (a LocalCluster by default, or any
  ``distributed.Client`` / scheduler address) and appends them in order to ``X`` (chunked
  CSR) of an AnnData Zarr store; at most ``2 x workers`` chunks are in flight, so memory is
  bounded by the chunk, not the screen.
- :func:`pseudobulk_zarr` sums the cells of a Zarr (or h5ad) screen per sample by chunks of
  rows, each worker reading its own rows.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._dask import dask_client
from .._validation import Integer, check, fail
from .._backed import read_meta as _read_meta_path, read_rows
from ._engine import (CountModel, Design, _check_means, _count_roots, cell_noise, csr_rows, draw_rows,
                      max_expected_mean, public_noise)

__all__ = ["write_zarr", "pseudobulk_zarr", "profiles_zarr", "INDEX_LIMIT"]

#: Screens with at least this many cells x genes store int64 row pointers and column indices.
INDEX_LIMIT = np.iinfo(np.int32).max


def _draw_chunk(model, design, noise, roots, start, stop):
    """Worker task: CSR counts of cells [start, stop), with its peak memory of this process."""
    counts = draw_rows(model, design, noise, roots, np.arange(start, stop))
    return csr_rows(counts)


def _in_order(client, fn, args_list, window):
    """Results of ``fn(*args)`` in order, with at most ``window`` tasks in flight."""
    futures = {}
    nxt = 0
    for i in range(len(args_list)):
        while nxt < len(args_list) and nxt < i + window:
            futures[nxt] = client.submit(fn, *args_list[nxt], pure=False)
            nxt += 1
        yield futures.pop(i).result()


def write_zarr(model: CountModel, design: Design, noise_ss, obs_fn, var: pd.DataFrame, uns: dict, path, *,
               chunk_cells: int = 20_000, client=None, n_workers: int | None = None, force: bool = False) -> Path:
    """Draw a screen's cells in chunks on Dask and write them as an AnnData Zarr store.

    Parameters
    ----------
    model : CountModel
    design : Design
    noise_ss : SeedSequence
        Root of the noise streams (as for the in-memory draw).
    obs_fn : callable
        ``obs_fn(noise) -> DataFrame``: the cells' ``obs`` from the per-cell noise.
    var : DataFrame
    uns : dict
    path : str or path-like
        A ``.zarr`` directory; replaced only when it is an earlier simpert screen or ``force``.
    chunk_cells : int, default 20000
        Cells per chunk (task); memory per worker is about ``chunk_cells x genes x 16`` bytes.
    client : distributed.Client, str or None
        Where to draw (see :func:`dask_client`).
    n_workers : int, optional
        Workers of the LocalCluster started when ``client`` is None.
    force : bool, default False

    Returns
    -------
    Path
    """
    import anndata as ad
    import zarr
    from anndata.io import sparse_dataset, write_elem

    from .._io import atomic_dir, check_output

    check("chunk_cells", chunk_cells, Integer(1))
    path = Path(path)
    if path.suffix != ".zarr":
        fail("out", "a path ending in .zarr", str(path))
    force = force or _is_zarr_screen(path)
    check_output(path, kind="screen-zarr", directory=True, force=force, name="out")
    _check_means(model)
    n = design.group.shape[0]
    noise = cell_noise(model, design, noise_ss)
    roots = _count_roots(noise_ss, model.effects.shape[0] + 1)
    obs = obs_fn(public_noise(noise))
    ranges = [(a, min(n, a + chunk_cells)) for a in range(0, n, chunk_cells)]
    G = model.base_mean.shape[0]
    with atomic_dir(path, kind="screen-zarr", force=force) as tmp:
        store = tmp / "screen.zarr"
        with warnings.catch_warnings():  # the Zarr format version is anndata's default choice
            warnings.filterwarnings("ignore", message="Writing zarr v2", category=UserWarning)
            ad.AnnData(obs=obs, var=var, uns=uns).write_zarr(store)  # everything but X
        group = zarr.open_group(store, mode="r+", use_consolidated=False)
        # one integer width for the whole store, chosen from the largest expected count
        wide = max_expected_mean(model) * 64 > np.iinfo(np.int32).max
        dtype = np.int64 if wide else np.int32
        # int32 row pointers overflow past 2^31 - 1 non-zeros: use int64 when the screen could
        wide_index = n * G >= INDEX_LIMIT
        first = True
        with dask_client(client, n_workers) as cl:
            shared = cl.scatter([model, design, noise, roots], broadcast=True)
            window = 2 * max(1, len(cl.scheduler_info().get("workers", {})))
            args = [(*shared, a, b) for a, b in ranges]
            for chunk in _in_order(cl, _draw_chunk, args, window):
                if chunk.dtype != dtype:
                    if chunk.dtype == np.int64 and chunk.data.size and chunk.data.max() > np.iinfo(np.int32).max:
                        fail("library_loc", "expected counts that fit the store's int32 values",
                             f"a count of {int(chunk.data.max())} (lower the means)")
                    chunk = chunk.astype(dtype)
                if first:
                    if wide_index:  # the store's indptr must hold the whole screen's non-zeros
                        chunk.indices = chunk.indices.astype(np.int64)  # set directly: the
                        chunk.indptr = chunk.indptr.astype(np.int64)  # constructor would narrow
                    write_elem(group, "X", chunk)
                    first = False
                else:
                    sparse_dataset(group["X"]).append(chunk)
        if first:  # no cells at all
            write_elem(group, "X", sp.csr_matrix((0, G), dtype=dtype))
        zarr.consolidate_metadata(store)
        # move the store's content up: the directory itself is the Zarr store
        for item in store.iterdir():
            os.replace(item, tmp / item.name)
        store.rmdir()
    return path


def _is_zarr_screen(path: Path) -> bool:
    """Whether ``path`` is an AnnData Zarr store (an earlier output replaced without --force)."""
    return path.is_dir() and ((path / ".zgroup").is_file() or (path / "zarr.json").is_file()) \
        and (path / "obs").is_dir()


def pseudobulk_zarr(path, *, by=("perturbation", "replicate"), chunk_cells: int = 50_000, client=None,
                    n_workers: int | None = None):
    """Pseudobulk of a screen stored on disk, summed by chunks of cells (on Dask).

    Parameters
    ----------
    path : str or path-like
        A Zarr store (``.zarr``) or an ``.h5ad`` file of cells with integer counts in ``X``.
    by : tuple of str, default ("perturbation", "replicate")
        Columns of ``obs`` that define the samples.
    chunk_cells : int, default 50000
        Rows read per task.
    client, n_workers
        As in :func:`write_zarr`; ``client="serial"`` reads in this process.

    Returns
    -------
    AnnData
        Samples x genes (int64 counts), ``obs`` as :func:`simpert.sim.pseudobulk` makes it,
        ``uns`` copied.
    """
    import anndata as ad

    from ._pseudobulk import _sample_table

    check("chunk_cells", chunk_cells, Integer(1))
    path = Path(path)
    if not path.exists():
        fail("path", "an existing .zarr store or .h5ad file", str(path), exc=FileNotFoundError)
    obs, var, uns, n = _read_meta_path(path)
    for b in by:
        if b not in obs.columns:
            fail("by", f"columns of obs ({', '.join(obs.columns)})", b)
    codes, sample_obs = _sample_table(obs, tuple(by))
    ranges = [(a, min(n, a + chunk_cells)) for a in range(0, n, chunk_cells)]
    G = len(var)
    out = np.zeros((len(sample_obs), G), dtype=np.int64)
    if client == "serial":
        for a, b in ranges:
            ids, block = _sum_rows(str(path), codes[a:b], a, b)
            out[ids] += block
    else:
        with dask_client(client, n_workers) as cl:
            futures = [cl.submit(_sum_rows, str(path), codes[a:b], a, b, pure=False) for a, b in ranges]
            for fut in futures:
                ids, block = fut.result()
                out[ids] += block
                fut.release()
    return ad.AnnData(X=out, obs=sample_obs, var=var, uns=uns)


def profiles_zarr(path, *, by: str = "perturbation", target_sum: float = 1e4, chunk_cells: int = 50_000,
                  client=None, n_workers: int | None = None) -> pd.DataFrame:
    """Log-normalised profiles of a screen stored on disk, by chunks of cells (on Dask).

    The profile of a group is the mean over its cells of ``log1p(target_sum * x / total)``,
    as :func:`simpert._profiles.group_profiles` computes in memory; here each worker reads
    its own rows, so the screen is never loaded.

    Parameters
    ----------
    path : str or path-like
        A Zarr store or an ``.h5ad`` file of cells with counts in ``X``.
    by : str, default "perturbation"
        Column of ``obs`` defining the groups.
    target_sum : float, default 1e4
    chunk_cells : int, default 50000
    client, n_workers
        As in :func:`pseudobulk_zarr` (``client="serial"`` reads in this process).

    Returns
    -------
    DataFrame
        Groups (observed, in category order) x genes.
    """
    check("chunk_cells", chunk_cells, Integer(1))
    path = Path(path)
    if not path.exists():
        fail("path", "an existing .zarr store or .h5ad file", str(path), exc=FileNotFoundError)
    obs, var, _, n = _read_meta_path(path)
    if by not in obs.columns:
        fail("by", f"a column of obs ({', '.join(obs.columns)})", by)
    cat = pd.Categorical(obs[by]).remove_unused_categories()
    codes = np.asarray(cat.codes, dtype=np.int64)
    ranges = [(a, min(n, a + chunk_cells)) for a in range(0, n, chunk_cells)]
    sums = np.zeros((len(cat.categories), len(var)))
    if client == "serial":
        parts = (_sum_rows(str(path), codes[a:b], a, b, target_sum) for a, b in ranges)
        for ids, block in parts:
            sums[ids] += block
    else:
        with dask_client(client, n_workers) as cl:
            for fut in [cl.submit(_sum_rows, str(path), codes[a:b], a, b, target_sum, pure=False)
                        for a, b in ranges]:
                ids, block = fut.result()
                sums[ids] += block
                fut.release()
    sizes = np.bincount(codes, minlength=len(cat.categories)).astype(float)
    return pd.DataFrame(sums / sizes[:, None], index=pd.Index(cat.categories, name=by),
                        columns=pd.Index(var.index.astype(str)))


def _sum_rows(path: str, codes: np.ndarray, start: int, stop: int, target_sum: float | None = None):
    """Worker task: sums of rows [start, stop) per code present in them (raw counts, or
    log-normalised values when ``target_sum`` is given)."""
    X = read_rows(path, start, stop)
    if target_sum is not None:
        from .._profiles import lognormalize

        X = lognormalize(X, target_sum=target_sum)
    ids, inv = np.unique(codes, return_inverse=True)
    ind = sp.csr_matrix((np.ones(inv.size), (inv, np.arange(inv.size))), shape=(ids.size, inv.size))
    block = np.asarray((ind @ X).todense())
    return ids, (block.astype(np.int64) if target_sum is None else block)
