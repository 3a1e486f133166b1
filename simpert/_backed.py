"""Screens stored on disk (AnnData Zarr stores and ``.h5ad`` files), read a block of rows at a time.

The streaming paths (pseudobulk, profiles, Wilcoxon DE, ``evaluate`` of stored screens) read
``obs`` and ``var`` whole (a few numbers per cell) and the expression matrix by row ranges,
so the cell matrix is never loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ._validation import fail

__all__ = ["is_backed_path", "read_meta", "open_x", "read_rows", "row_ranges"]


def is_backed_path(x) -> bool:
    """Whether ``x`` names a stored screen (a str or path ending in ``.zarr`` or ``.h5ad``)."""
    return isinstance(x, (str, Path)) and Path(x).suffix in (".zarr", ".h5ad")


def _check_path(path, name: str) -> Path:
    path = Path(path)
    if not path.exists():
        fail(name, "an existing .zarr store or .h5ad file", str(path), exc=FileNotFoundError)
    if path.suffix not in (".zarr", ".h5ad"):
        fail(name, "a path ending in .zarr or .h5ad", str(path))
    return path


def read_meta(path, *, name: str = "path"):
    """``obs``, ``var``, ``uns`` and the number of rows of a stored AnnData.

    Parameters
    ----------
    path : str or path-like
        A Zarr store or an ``.h5ad`` file.
    name : str, default "path"
        Parameter named in errors.

    Returns
    -------
    tuple
        ``(obs, var, uns, n_obs)``.
    """
    from anndata.io import read_elem

    path = _check_path(path, name)
    if path.suffix == ".h5ad":
        import h5py

        with h5py.File(path, "r") as f:
            obs, var = read_elem(f["obs"]), read_elem(f["var"])
            uns = read_elem(f["uns"]) if "uns" in f else {}
            n = int(f["X"].attrs["shape"][0]) if "shape" in f["X"].attrs else f["X"].shape[0]
        return obs, var, uns, n
    import zarr

    g = zarr.open_group(path, mode="r")
    obs, var = read_elem(g["obs"]), read_elem(g["var"])
    uns = read_elem(g["uns"]) if "uns" in g else {}
    x = g["X"]
    n = int(x.attrs["shape"][0]) if "shape" in x.attrs else int(x.shape[0])
    return obs, var, uns, n


def open_x(path: str, layer: str | None = None):
    """The expression matrix of a stored AnnData, opened for row slicing (not loaded).

    Parameters
    ----------
    path : str
    layer : str, optional
        A layer instead of ``X``.

    Returns
    -------
    anndata sparse dataset, or an h5py / zarr array for dense matrices
    """
    from anndata.io import sparse_dataset

    key = "X" if layer is None else f"layers/{layer}"
    if str(path).endswith(".h5ad"):
        import h5py

        node = h5py.File(path, "r")[key]
    else:
        import zarr

        node = zarr.open_group(path, mode="r")[key]
    if node.attrs.get("encoding-type", "") in ("csr_matrix", "csc_matrix"):
        return sparse_dataset(node)
    return node


def read_rows(path: str, start: int, stop: int, layer: str | None = None) -> sp.csr_matrix:
    """Rows ``[start, stop)`` of a stored matrix as CSR.

    Parameters
    ----------
    path : str
    start, stop : int
    layer : str, optional

    Returns
    -------
    scipy.sparse.csr_matrix
    """
    block = open_x(path, layer)[start:stop]
    return sp.csr_matrix(block) if sp.issparse(block) else sp.csr_matrix(np.asarray(block))


def row_ranges(n: int, chunk: int) -> list[tuple[int, int]]:
    """``[(0, chunk), (chunk, 2 chunk), ...]`` covering ``n`` rows."""
    return [(a, min(n, a + chunk)) for a in range(0, n, chunk)]
