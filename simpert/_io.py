"""Atomic file output: write to a temporary file beside the target, then move it into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "write_text_atomic", "write_h5ad_atomic", "write_table_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Context manager yielding a temporary path that replaces ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def write_h5ad_atomic(adata, path) -> Path:
    """Write an AnnData to ``path`` (.h5ad) atomically."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
    return Path(path)


def write_table_atomic(df, path) -> Path:
    """Write a DataFrame as .parquet, .csv or .tsv (by suffix) atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif suffix in (".tsv", ".txt"):
            df.to_csv(tmp, index=False, sep="\t")
        else:
            raise ValueError(
                f"parameter 'path' must end in .parquet, .csv or .tsv; got {str(path)!r}"
            )
    return path
