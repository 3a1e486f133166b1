"""Safe file output: nothing the user did not ask to replace is lost, nothing half-written stays.

Every output is written to a temporary path beside its target and moved into place when
complete. The conventions:

- :func:`check_output` runs *before* any work: the parent directory must exist and be
  writable, a file output must not be a directory, and a directory output that exists must
  be empty or an earlier simpert output of the same kind (a ``.simpert-output`` marker
  says which), unless the caller passes ``force=True``.
- :func:`atomic_path` (a file) and :func:`atomic_dir` (a directory, whose old content is
  replaced as a whole, so it holds one run's files only) clean their temporary path on any
  exception, including the ``SystemExit`` that :func:`install_signal_cleanup` raises on
  SIGTERM; SIGINT raises ``KeyboardInterrupt`` and is cleaned the same way.
- Temporary names carry the writing process's id (``.NAME.simpert-tmp-PID-XXXX``); a later
  write to the same target removes those whose process no longer runs.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import threading
from pathlib import Path

__all__ = [
    "MARKER",
    "check_output",
    "atomic_path",
    "atomic_dir",
    "write_text_atomic",
    "write_h5ad_atomic",
    "write_table_atomic",
    "install_signal_cleanup",
    "clean_stale",
    "process_alive",
]

#: File written into every directory output, naming the kind of output it is.
MARKER = ".simpert-output"
_TAG = ".simpert-tmp-"
_LIVE: set[str] = set()
_LOCK = threading.Lock()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def process_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` runs (this process counts as running).

    Parameters
    ----------
    pid : int

    Returns
    -------
    bool
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def clean_stale(path: str | os.PathLike) -> list[str]:
    """Remove temporary files of ``path`` left by simpert processes that no longer run.

    Parameters
    ----------
    path : str or path-like
        The target whose leftovers (``.NAME.simpert-tmp-PID-*``) are looked for.

    Returns
    -------
    list of str
        The paths removed.
    """
    path = Path(path)
    removed = []
    pattern = str(path.parent / f".{glob.escape(path.name)}{_TAG}*")
    for cand in glob.glob(pattern):
        rest = os.path.basename(cand)[len(path.name) + 1 + len(_TAG):]
        pid_text = rest.split("-", 1)[0]
        if pid_text.isdigit() and not process_alive(int(pid_text)):
            _remove(cand)
            removed.append(cand)
    return removed


def _tmp_name(path: Path, suffix: str = "") -> Path:
    return path.parent / f".{path.name}{_TAG}{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def _marker_kind(path: Path) -> str | None:
    try:
        return json.loads((path / MARKER).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def check_output(path: str | os.PathLike, *, kind: str = "file", directory: bool = False,
                 force: bool = False, name: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written without losing anything.

    Parameters
    ----------
    path : str or path-like
        The output to be written.
    kind : str, default "file"
        For directory outputs, the kind of output (e.g. ``"mtx"``, ``"calibration"``); an
        existing directory is replaced only when its marker names the same kind or it is
        empty.
    directory : bool, default False
        Whether the output is a directory.
    force : bool, default False
        Replace an existing directory output whatever it holds.
    name : str, default "output"
        Name of the parameter or option, used in messages.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    FileNotFoundError
        The parent directory does not exist.
    NotADirectoryError
        A component of the parent is not a directory.
    PermissionError
        The parent directory is not writable.
    FileExistsError
        The path exists and is of the wrong type, or is a directory that simpert did not write.
    """
    path = Path(path).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NotADirectoryError(
            f"{name} {str(path)!r} cannot be written: {str(probe)!r} is a file, not a directory"
        )
    if not parent.is_dir():
        raise FileNotFoundError(
            f"{name} {str(path)!r} cannot be written: its directory {str(parent)!r} does not "
            "exist (create it first)"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"{name} {str(path)!r} cannot be written: no write permission in {str(parent)!r}"
        )
    if directory:
        if path.exists() and not path.is_dir():
            raise FileExistsError(
                f"{name} {str(path)!r} exists and is a file; this output is a directory"
            )
        if path.is_dir() and not force and any(path.iterdir()):
            found = _marker_kind(path)
            if found != kind:
                what = f"a simpert {found} output" if found else "not a simpert output"
                raise FileExistsError(
                    f"{name} {str(path)!r} is a directory that is {what} and is not empty; "
                    f"simpert replaces only an earlier {kind} output. Choose a new path, or "
                    "pass --force (force=True) to replace it"
                )
    elif path.is_dir():
        raise IsADirectoryError(f"{name} {str(path)!r} is a directory; this output is a file")
    return path


@contextlib.contextmanager
def _tracked(tmp: Path):
    with _LOCK:
        _LIVE.add(str(tmp))
    try:
        yield
    finally:
        with _LOCK:
            _LIVE.discard(str(tmp))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Context manager yielding a temporary path that replaces the file ``path`` on success.

    Parameters
    ----------
    path : str or path-like
        The file to write. Its parent directory must exist.

    Yields
    ------
    Path
        A temporary path beside ``path`` with the same suffixes (so writers that look at the
        suffix behave the same). It is removed on any exception; ``path`` is then untouched.
    """
    path = check_output(path)
    clean_stale(path)
    tmp = _tmp_name(path, "".join(path.suffixes))
    with _tracked(tmp):
        try:
            yield tmp
            if not tmp.exists():
                raise FileNotFoundError(f"nothing was written for {str(path)!r}")
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except BaseException:
            _remove(str(tmp))
            raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, kind: str, force: bool = False):
    """Context manager yielding a temporary directory that replaces the directory ``path``.

    On success the directory gets a marker naming ``kind`` and replaces ``path`` as a whole,
    so ``path`` holds the files of this write only. An existing ``path`` is replaced only
    when it is empty, an earlier output of the same kind, or ``force`` is true (checked
    before and after the work).

    Parameters
    ----------
    path : str or path-like
        The directory to write.
    kind : str
        The kind of output (recorded in the marker file).
    force : bool, default False
        Replace an existing directory whatever it holds.

    Yields
    ------
    Path
        The temporary directory to fill.
    """
    path = check_output(path, kind=kind, directory=True, force=force)
    clean_stale(path)
    tmp = _tmp_name(path)
    with _tracked(tmp):
        try:
            tmp.mkdir()
            yield tmp
            (tmp / MARKER).write_text(json.dumps({"kind": kind}) + "\n")
            os.chmod(tmp, 0o777 & ~_umask())
            check_output(path, kind=kind, directory=True, force=force)
            old = None
            if path.exists():
                old = _tmp_name(path, ".old")
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                _remove(str(old))
        except BaseException:
            _remove(str(tmp))
            raise


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically.

    Parameters
    ----------
    path : str or path-like
    text : str

    Returns
    -------
    Path
    """
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def write_h5ad_atomic(adata, path) -> Path:
    """Write an AnnData to ``path`` (.h5ad) atomically.

    Parameters
    ----------
    adata : AnnData
    path : str or path-like

    Returns
    -------
    Path
    """
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp)
    return Path(path)


_TABLE_SUFFIXES = (".parquet", ".csv", ".tsv", ".txt")


def write_table_atomic(df, path) -> Path:
    """Write a DataFrame as .parquet, .csv or .tsv (by suffix) atomically.

    Parameters
    ----------
    df : DataFrame
    path : str or path-like
        Ends in .parquet, .csv, .tsv or .txt (tab-separated).

    Returns
    -------
    Path
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _TABLE_SUFFIXES:
        raise ValueError(
            f"parameter 'path' must end in .parquet, .csv or .tsv; got {str(path)!r}"
        )
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_csv(tmp, index=False, sep="\t")
    return path


def _on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
    raise SystemExit(128 + signum)


def _cleanup_live() -> None:
    with _LOCK:
        live = list(_LIVE)
    for p in live:
        _remove(p)


def install_signal_cleanup() -> None:
    """Make SIGTERM (and SIGHUP) unwind the process so temporary outputs are removed.

    The handlers raise ``SystemExit(128 + signal)``, which :func:`atomic_path` and
    :func:`atomic_dir` catch to remove their temporary paths; SIGINT already raises
    ``KeyboardInterrupt``. Temporary paths still registered at exit are removed too. Only
    the main thread can install handlers; elsewhere this does nothing.
    """
    import atexit

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _on_signal)
    atexit.register(_cleanup_live)
