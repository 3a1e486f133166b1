"""Error reporting and progress display for the ``simpert`` command line."""

from __future__ import annotations

import functools
import os
import sys
import time
import traceback

import typer

__all__ = ["CLIError", "EXIT_USAGE", "EXIT_INTERNAL", "user_errors", "progress", "echo_err"]

EXIT_USAGE = 2
EXIT_INTERNAL = 1


class CLIError(Exception):
    """A user error: reported as one ``error: ...`` line and exit status 2, no traceback."""


def echo_err(message: str) -> None:
    """Print ``message`` to standard error."""
    typer.echo(message, err=True)


def user_errors(fn):
    """Decorate a command: user errors become ``error: ...`` on stderr and exit status 2.

    ``CLIError``, ``ValueError``, ``TypeError``, ``KeyError`` and the file errors
    (``FileNotFoundError``, ``FileExistsError``, ``NotADirectoryError``,
    ``IsADirectoryError``, ``PermissionError``) and ``MemoryError`` (a size check that
    refuses work too large for this machine) and ``ImportError`` (a missing or broken
    optional dependency, such as R) are user errors (bad input). Anything else is reported as an internal
    error with exit status 1; set ``SIMPERT_DEBUG=1`` to see the traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except (CLIError, ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError,
                NotADirectoryError, IsADirectoryError, PermissionError, MemoryError, ImportError) as err:
            if os.environ.get("SIMPERT_DEBUG"):
                traceback.print_exc()
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            echo_err(f"error: {message}")
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            echo_err("interrupted")
            raise typer.Exit(130) from None
        except Exception as err:  # an internal failure: say so, keep the traceback optional
            if os.environ.get("SIMPERT_DEBUG"):
                traceback.print_exc()
            echo_err(f"internal error ({type(err).__name__}): {err}\n"
                     "(set SIMPERT_DEBUG=1 for the traceback)")
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


class _Progress:
    """A progress display on stderr: a rich bar on a terminal, plain lines otherwise."""

    def __init__(self, description: str, total: int | None, quiet: bool):
        self.description = description
        self.total = total
        self.quiet = quiet
        self.done = 0
        self._bar = None
        self._task = None
        self._t0 = time.perf_counter()

    def __enter__(self):
        if self.quiet:
            return self
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                                       TextColumn, TimeElapsedColumn)

            columns = [SpinnerColumn(), TextColumn("{task.description}")]
            if self.total:
                columns += [BarColumn(), MofNCompleteColumn()]
            columns.append(TimeElapsedColumn())
            self._bar = Progress(*columns, console=Console(stderr=True), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        else:
            echo_err(f"{self.description} ...")
        return self

    def advance(self, n: int = 1, *, total: int | None = None) -> None:
        """Record ``n`` finished steps (optionally updating the total)."""
        self.done += n
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(self._task, advance=n, total=self.total)

    def update(self, done: int, total: int | None = None) -> None:
        """Set the number of finished steps."""
        self.advance(done - self.done, total=total)

    def __exit__(self, exc_type, exc, tb):
        elapsed = time.perf_counter() - self._t0
        if self._bar is not None:
            self._bar.stop()
        elif not self.quiet and exc_type is None:
            echo_err(f"{self.description}: done in {elapsed:.1f} s")
        return False


def progress(description: str, *, total: int | None = None, quiet: bool = False) -> _Progress:
    """Context manager showing progress of long work on stderr.

    Parameters
    ----------
    description : str
        What is being done.
    total : int, optional
        Number of steps, when known (a bar is drawn); otherwise a spinner.
    quiet : bool, default False
        Show nothing.
    """
    return _Progress(description, total, quiet)
