"""Screens larger than memory: cells drawn in chunks on Dask and written to Zarr, read back in chunks.

The count engine draws every cell from its own stream (:func:`simpert.sim._engine.draw_rows`),
so a chunk of cells can be drawn anywhere, in any order, and the written counts are the bytes
of the in-memory screen for the same seed, whatever the chunk size and the number of workers.

- :func:`write_zarr` draws chunks on a Dask cluster (a LocalCluster by default, or any
  ``distributed.Client`` / scheduler address) into ``X`` (chunked CSR) of an AnnData Zarr
  store. Each worker writes the Zarr blocks inside its own chunks; the calling process
  learns only each chunk's row sizes (to place the next chunk) and writes the few blocks
  that two chunks share. At most ``2 x workers`` chunks are drawn ahead, so memory is
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


def _draw_chunk(model, design, noise, roots, start, stop, dtype, index_dtype):
    """Worker task: CSR counts of cells [start, stop) in the store's value and index types."""
    counts = csr_rows(draw_rows(model, design, noise, roots, np.arange(start, stop)))
    if counts.dtype != dtype:
        if counts.dtype == np.int64 and counts.data.size and counts.data.max() > np.iinfo(np.int32).max:
            fail("library_loc", "expected counts that fit the store's int32 values",
                 f"a count of {int(counts.data.max())} (lower the means)")
        counts = counts.astype(dtype)
    # set directly: the constructor would narrow int64 indices of a screen that needs them
    counts.indices = counts.indices.astype(index_dtype, copy=False)
    counts.indptr = counts.indptr.astype(index_dtype, copy=False)
    return counts


def _row_sizes(counts) -> np.ndarray:
    """Worker task: the non-zeros of each row of a chunk (all the calling process needs)."""
    return np.diff(counts.indptr)


def _whole_blocks(offset: int, nnz: int, block: int) -> tuple[int, int]:
    """The Zarr blocks lying wholly inside ``[offset, offset + nnz)``, as ``[lo, hi)`` (``hi <= lo``: none)."""
    return -(-offset // block) * block, (offset + nnz) // block * block


def _write_inside(store: str, counts, offset: int, block: int):
    """Write the whole Zarr blocks of ``data`` and ``indices`` that lie inside one chunk's span.

    Each block wholly inside ``[offset, offset + nnz)`` is written by the one process that
    holds the chunk, so no two processes ever write the same block. The pieces before the
    first and after the last whole block (they share blocks with the neighbouring chunks)
    are returned, with whether the middle was written, for the calling process to write.
    """
    import zarr

    lo, hi = _whole_blocks(offset, counts.nnz, block)
    if hi <= lo:
        return (counts.data, counts.indices), None, False
    x = zarr.open_group(store, mode="r+", use_consolidated=False)["X"]
    a, b = lo - offset, hi - offset
    x["data"][lo:hi] = counts.data[a:b]
    x["indices"][lo:hi] = counts.indices[a:b]
    return (counts.data[:a], counts.indices[:a]), (counts.data[b:], counts.indices[b:]), True


class _Seams:
    """The calling process's share of the writes: the blocks that neighbouring chunks share.

    Chunks arrive in order. ``pending`` holds the values from ``start`` (a block boundary)
    up to the end of the chunks seen so far that no worker wrote; whole blocks of it are
    written as soon as they are complete, so it never holds more than one block and one chunk.
    """

    def __init__(self, x, block: int):
        self.x, self.block, self.start, self.pending = x, block, 0, []

    def add(self, head, tail, middle_written: bool, offset: int, nnz: int) -> None:
        self.pending.append(head)
        if middle_written:  # the pending values end at the first block the worker wrote
            lo, hi = _whole_blocks(offset, nnz, self.block)
            self._flush(lo)
            self.start, self.pending = hi, [tail]
        else:
            end = (offset + nnz) // self.block * self.block
            if end > self.start:
                self._flush(end, keep=True)

    def finish(self, total: int) -> None:
        self._flush(total)
        self.pending = []

    def _flush(self, upto: int, keep: bool = False) -> None:
        data = np.concatenate([d for d, _ in self.pending]) if self.pending else np.zeros(0)
        idx = np.concatenate([i for _, i in self.pending]) if self.pending else np.zeros(0)
        n = upto - self.start
        if n > 0:
            self.x["data"][self.start:upto] = data[:n]
            self.x["indices"][self.start:upto] = idx[:n]
        if keep:
            self.pending = [(data[n:], idx[n:])]
            self.start = upto


def _settle(futures) -> None:
    """Wait until these tasks have ended, whatever their outcome."""
    if futures:
        import distributed

        distributed.wait(futures)


def _block_size(chunk_cells: int, n_genes: int) -> int:
    """Elements per Zarr block of ``data`` and ``indices``: a power of two near an eighth of a
    dense chunk (so a chunk spans several blocks), between 2^8 and 2^20 (4-8 MB)."""
    target = max(1, chunk_cells * n_genes // 8)
    return int(min(1 << 20, max(1 << 8, 1 << (target.bit_length() - 1))))


def write_zarr(model: CountModel, design: Design, noise_ss, obs_fn, var: pd.DataFrame, uns: dict, path, *,
               chunk_cells: int = 20_000, client=None, n_workers: int | None = None, force: bool = False,
               write_from: str = "workers") -> Path:
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
    write_from : {"workers", "client"}, default "workers"
        Who writes the counts: each worker writes the Zarr blocks that lie inside its own
        chunks and this process writes only the blocks two chunks share (the store's
        directory must then be on a filesystem every worker sees, as for a LocalCluster);
        ``"client"`` fetches every chunk and writes it here (a cluster without a shared
        filesystem). The store holds the same values either way.

    Returns
    -------
    Path
    """
    import anndata as ad
    import zarr

    from .._io import atomic_dir, check_output
    from .._validation import OneOf

    check("chunk_cells", chunk_cells, Integer(1))
    check("write_from", write_from, OneOf(("workers", "client")))
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
    # one integer width for the whole store, chosen from the largest expected count
    dtype = np.dtype(np.int64 if max_expected_mean(model) * 64 > np.iinfo(np.int32).max else np.int32)
    # int32 row pointers overflow past 2^31 - 1 non-zeros: use int64 when the screen could
    index_dtype = np.dtype(np.int64 if n * G >= INDEX_LIMIT else np.int32)
    block = _block_size(chunk_cells, G)
    with atomic_dir(path, kind="screen-zarr", force=force) as tmp, dask_client(client, n_workers) as cl:
        store = tmp / "screen.zarr"
        # the workers start drawing first; this process writes the metadata meanwhile
        shared = cl.scatter([model, design, noise, roots], broadcast=True) if ranges else []
        # one draw per worker at a time: a queued draw would hold back the small tasks
        # (row sizes, writes) that the next offsets wait for
        window = max(1, len(cl.scheduler_info().get("workers", {})))
        draws, sizes_of = {}, {}

        def submit(j):
            a, b = ranges[j]
            draws[j] = cl.submit(_draw_chunk, *shared, a, b, dtype, index_dtype, pure=False)
            if write_from == "workers":
                sizes_of[j] = cl.submit(_row_sizes, draws[j], pure=False, priority=1)  # before any draw

        for j in range(min(window, len(ranges))):
            submit(j)
        with warnings.catch_warnings():  # the Zarr format version is anndata's default choice
            warnings.filterwarnings("ignore", message="Writing zarr v2", category=UserWarning)
            ad.AnnData(obs=obs, var=var, uns=uns).write_zarr(store)  # everything but X
        group = zarr.open_group(store, mode="r+", use_consolidated=False)
        x = group.create_group("X")
        x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": [n, G]})
        bound = max(1, n * G)  # no more non-zeros than that; cut to the real number at the end
        for name, dt in (("data", dtype), ("indices", index_dtype)):
            x.create_array(name, shape=(bound,), chunks=(block,), dtype=dt, fill_value=0)
        sizes = np.zeros(n, dtype=np.int64)
        seams = _Seams(x, block)
        offset = 0
        writes = []  # (the seams, or their future; offset; nnz), in order
        try:
            for i, (a, b) in enumerate(ranges):
                if write_from == "workers":
                    # the next chunk's offset needs only this one's row sizes, so the workers
                    # write chunk after chunk without waiting for each other
                    rows = sizes_of.pop(i).result()
                    nnz = int(rows.sum())
                    writes.append((cl.submit(_write_inside, str(store), draws.pop(i), offset, block, pure=False,
                                             priority=1),
                                   offset, nnz))
                else:
                    counts = draws.pop(i).result()
                    rows, nnz = np.diff(counts.indptr), counts.nnz
                    writes.append((_write_inside(str(store), counts, offset, block), offset, nnz))
                    del counts
                if i + window < len(ranges):
                    submit(i + window)
                sizes[a:b] = rows
                offset += nnz
                while writes and (len(writes) > window or b == n):
                    done, off, k = writes.pop(0)
                    seams.add(*(done if isinstance(done, tuple) else done.result()), off, k)
        finally:  # on an error, no task may go on writing into the directory about to be removed
            cl.cancel(list(draws.values()) + list(sizes_of.values()))
            _settle([w for w, _, _ in writes if not isinstance(w, tuple)])
        seams.finish(offset)
        for name in ("data", "indices"):
            x[name].resize((offset,))
        indptr = np.zeros(n + 1, dtype=index_dtype)
        np.cumsum(sizes, out=indptr[1:])
        x.create_array("indptr", shape=(n + 1,), chunks=(min(n + 1, 1 << 20),), dtype=index_dtype,
                       fill_value=0)
        x["indptr"][:] = indptr
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
