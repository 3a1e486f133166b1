"""Screens larger than memory: cells drawn in chunks on Dask and written to Zarr, read back in chunks.

The count engine draws every cell from its own stream (:func:`simpert.sim._engine.draw_rows`),
so a chunk of cells can be drawn anywhere, in any order, and the written counts are the bytes
of the in-memory screen for the same seed, whatever the chunk size and the number of workers.

- :func:`write_zarr` draws chunks on a Dask cluster (a LocalCluster by default, or any
  ``distributed.Client`` / scheduler address) into ``X`` (chunked CSR) of an AnnData Zarr
  store. Each task gets only its own cells' design and noise; a worker keeps each chunk it
  draws in a compressed temporary part and, once the chunk's place in ``X`` is known (from
  the row sizes of the chunks before it, all the calling process receives), copies parts
  into whole blocks of the store, each block by one task. At most ``2 x workers`` chunks
  are drawn ahead, so memory is bounded by the chunk, not the screen.
- :func:`pseudobulk_zarr` sums the cells of a Zarr (or h5ad) screen per sample by chunks of
  rows, each worker reading its own rows.
"""

from __future__ import annotations

import dataclasses
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


def _chunk_of(design: Design, noise: dict, start: int, stop: int) -> tuple:
    """The design and noise of cells [start, stop) alone: what a task needs to draw them."""
    fields = {f.name: (None if getattr(design, f.name) is None else getattr(design, f.name)[start:stop])
              for f in dataclasses.fields(design)}
    return Design(**fields), {k: v[start:stop] for k, v in noise.items()}


def _drawn(model, roots, design, noise, dtype, index_dtype):
    """CSR counts of a chunk's cells in the store's value and index types (also the worker
    task of ``write_from="client"``)."""
    counts = csr_rows(draw_rows(model, design, noise, roots, np.arange(design.group.shape[0])))
    if counts.dtype != dtype:
        if counts.dtype == np.int64 and counts.data.size and counts.data.max() > np.iinfo(np.int32).max:
            fail("library_loc", "expected counts that fit the store's int32 values",
                 f"a count of {int(counts.data.max())} (lower the means)")
        counts = counts.astype(dtype)
    # set directly: the constructor would narrow int64 indices of a screen that needs them
    counts.indices = counts.indices.astype(index_dtype, copy=False)
    counts.indptr = counts.indptr.astype(index_dtype, copy=False)
    return counts


def _draw_part(model, roots, design, noise, dtype, index_dtype, part: str):
    """Worker task: draw a chunk, keep its non-zeros in ``part`` (compressed), return its row sizes.

    The part is written to a temporary file next to the store and removed as soon as its
    values are in the store; the calling process receives only the row sizes.
    """
    from numcodecs import Blosc

    counts = _drawn(model, roots, design, noise, dtype, index_dtype)
    codec = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
    tmp = part + ".tmp"
    with open(tmp, "wb") as fh:
        for arr in (counts.data, counts.indices):
            blob = codec.encode(np.ascontiguousarray(arr))
            fh.write(np.int64(len(blob)).tobytes())
            fh.write(blob)
    os.replace(tmp, part)
    return np.diff(counts.indptr)


def _read_part(part: str, dtype, index_dtype) -> tuple:
    """The non-zeros (values, column indices) of a part written by :func:`_draw_part`."""
    from numcodecs import Blosc

    codec = Blosc()
    out = []
    with open(part, "rb") as fh:
        for dt in (dtype, index_dtype):
            size = int(np.frombuffer(fh.read(8), dtype=np.int64)[0])
            out.append(np.frombuffer(codec.decode(fh.read(size)), dtype=dt))
    return tuple(out)


def _copy_blocks(store: str, parts: list, start: int, stop: int, dtype, index_dtype) -> int:
    """Worker task: write the store's non-zeros ``[start, stop)`` from the parts that hold them.

    ``parts`` lists ``(file, offset, nnz)`` of the chunks overlapping the range, in order;
    ``start`` is a block boundary and ``stop`` one too (or the end of the screen), so each
    block of the store is written by one task only.
    """
    import zarr

    data, idx = [], []
    for part, offset, nnz in parts:
        d, i = _read_part(part, dtype, index_dtype)
        a, b = max(start, offset) - offset, min(stop, offset + nnz) - offset
        data.append(d[a:b])
        idx.append(i[a:b])
    x = zarr.open_group(store, mode="r+", use_consolidated=False)["X"]
    x["data"][start:stop] = np.concatenate(data)
    x["indices"][start:stop] = np.concatenate(idx)
    return stop - start


class _Placement:
    """Where each chunk's non-zeros go in the store, learned as the chunks' row sizes arrive.

    Chunks finish in any order; a chunk's offset is known once every earlier chunk's size
    is. The store's blocks (``block`` non-zeros each) are handed out in order, one task per
    chunk: the blocks that start inside that chunk's span, as soon as the chunks they reach
    into are placed.
    """

    def __init__(self, n_chunks: int, block: int):
        self.nnz = [None] * n_chunks
        self.offset = [0]  # offsets of the placed prefix of chunks, and the end of the last
        self.block = block
        self.next_task = 0  # the first chunk whose blocks are not handed out yet

    def add(self, i: int, nnz: int) -> None:
        self.nnz[i] = nnz
        while len(self.offset) <= len(self.nnz) and self.nnz[len(self.offset) - 1] is not None:
            self.offset.append(self.offset[-1] + self.nnz[len(self.offset) - 1])

    def ready(self):
        """``(chunk, start, stop, [(chunk, offset, nnz), ...])`` of each block range now writable."""
        placed = len(self.offset) - 1
        total = self.offset[-1] if placed == len(self.nnz) else None
        ceil = lambda v: -(-v // self.block) * self.block  # noqa: E731
        while self.next_task < placed:
            j = self.next_task
            start = ceil(self.offset[j])
            stop = ceil(self.offset[j + 1]) if j + 1 < len(self.nnz) else self.offset[j + 1]
            if total is not None:
                stop = min(stop, total)
            elif stop > self.offset[-1]:  # the last block reaches into chunks not placed yet
                return
            self.next_task += 1
            if stop > start:  # chunks j .. last overlap the blocks (offset[j] <= start < stop)
                last = int(np.searchsorted(self.offset, stop, side="left")) - 1
                yield j, start, stop, [(k, self.offset[k], self.nnz[k]) for k in range(j, last + 1)]
            else:
                yield j, start, start, []


def _block_size(chunk_cells: int, n_genes: int) -> int:
    """Non-zeros per Zarr block of ``data`` and ``indices``: a power of two near an eighth of
    a dense chunk (so a chunk spans several blocks), between 2^8 and 2^20 (4-8 MB)."""
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
        Who writes the counts. ``"workers"``: each worker keeps the chunks it draws in
        temporary files next to the store and copies them into the store's blocks once
        their place is known; this process only learns each chunk's row sizes, so the
        workers never wait for it or for each other (the store's directory must be on a
        file system every worker sees, as for a LocalCluster). ``"client"``: every chunk
        comes back here and is appended in order (a cluster without a shared file system).
        The store holds the same values either way.

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
    with atomic_dir(path, kind="screen-zarr", force=force) as tmp, dask_client(client, n_workers) as cl:
        store = tmp / "screen.zarr"
        # only the model and the seeds go to every worker; each task gets its own cells
        shared = cl.scatter([model, roots], broadcast=True) if ranges else []
        window = 2 * max(1, len(cl.scheduler_info().get("workers", {})))
        draw = _draw_part if write_from == "workers" else _drawn
        parts = tmp / "parts"
        parts.mkdir()

        def submit(i):
            a, b = ranges[i]
            extra = (str(parts / str(i)),) if write_from == "workers" else ()
            return cl.submit(draw, *shared, *_chunk_of(design, noise, a, b), dtype, index_dtype, *extra,
                             pure=False)

        first = [submit(i) for i in range(min(window, len(ranges)))]
        # the workers are drawing; meanwhile this process writes everything but X
        with warnings.catch_warnings():  # the Zarr format version is anndata's default choice
            warnings.filterwarnings("ignore", message="Writing zarr v2", category=UserWarning)
            ad.AnnData(obs=obs, var=var, uns=uns).write_zarr(store)
        group = zarr.open_group(store, mode="r+", use_consolidated=False)
        if write_from == "workers":
            _write_from_workers(cl, group, str(store), first, submit, ranges, parts, n, G, dtype, index_dtype,
                                _block_size(chunk_cells, G))
        else:
            _append_in_order(cl, group, first, submit, ranges, G, dtype)
        parts.rmdir()
        zarr.consolidate_metadata(store)
        # move the store's content up: the directory itself is the Zarr store
        for item in store.iterdir():
            os.replace(item, tmp / item.name)
        store.rmdir()
    return path


def _write_from_workers(cl, group, store, first, submit, ranges, parts, n, G, dtype, index_dtype, block):
    """The workers draw chunks into parts and copy the parts into the store's blocks."""
    import distributed

    x = group.create_group("X")
    x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": [n, G]})
    for name, dt in (("data", dtype), ("indices", index_dtype)):  # cut to the real size at the end
        x.create_array(name, shape=(max(1, n * G),), chunks=(block,), dtype=dt, fill_value=0)
    sizes = np.zeros(n, dtype=np.int64)
    place = _Placement(len(ranges), block)
    role = {f: ("draw", i) for i, f in enumerate(first)}
    queue = distributed.as_completed(first)
    nxt = len(first)
    copied = [False] * len(ranges)
    removed = 0  # parts [0, removed) are in the store and deleted
    try:
        for fut in queue:
            what, i = role.pop(fut)
            result = fut.result()
            fut.release()
            if what == "draw":
                a, b = ranges[i]
                sizes[a:b] = result
                place.add(i, int(result.sum()))
                if nxt < len(ranges):
                    f = submit(nxt)
                    role[f] = ("draw", nxt)
                    queue.add(f)
                    nxt += 1
                for j, start, stop, over in place.ready():
                    if stop > start:  # before any queued draw: the parts are removed sooner
                        f = cl.submit(_copy_blocks, store, [(str(parts / str(k)), off, k_nnz)
                                                            for k, off, k_nnz in over],
                                      start, stop, dtype, index_dtype, pure=False, priority=1)
                        role[f] = ("copy", j)
                        queue.add(f)
                    else:
                        copied[j] = True
            else:
                copied[i] = True
            while removed < len(ranges) and copied[removed]:  # no later task reads these parts
                (parts / str(removed)).unlink()
                removed += 1
    finally:  # on an error, no task may go on writing into the directory about to be removed
        pending = list(role)
        cl.cancel(pending)
        distributed.wait(pending)
    total = place.offset[-1]
    for name in ("data", "indices"):
        x[name].resize((total,))
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(sizes, out=indptr[1:])
    x.create_array("indptr", shape=(n + 1,), chunks=(min(n + 1, 1 << 20),), dtype=index_dtype, fill_value=0)
    x["indptr"][:] = indptr


def _append_in_order(cl, group, first, submit, ranges, G, dtype):
    """Each chunk comes back to this process and is appended to ``X`` in order."""
    from anndata.io import sparse_dataset, write_elem

    futures = dict(enumerate(first))
    nxt = len(first)
    try:
        for i in range(len(ranges)):
            chunk = futures.pop(i).result()
            if nxt < len(ranges):
                futures[nxt] = submit(nxt)
                nxt += 1
            if i == 0:  # (int64 row pointers and indices already when the screen needs them)
                write_elem(group, "X", chunk)
            else:
                sparse_dataset(group["X"]).append(chunk)
    finally:
        cl.cancel(list(futures.values()))
    if not ranges:  # no cells at all
        write_elem(group, "X", sp.csr_matrix((0, G), dtype=dtype))


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
