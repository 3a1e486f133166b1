"""Render the vignettes to HTML in ``vignettes/_build`` (``make vignettes``).

Python vignettes (jupytext percent-format ``.py`` files) are converted to notebooks,
executed with nbclient and exported with nbconvert; the R Markdown vignette is rendered
with ``rmarkdown::render``. Usage::

    python -m vignettes.render [--only NAME ...] [--out DIR] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["HERE", "python_vignettes", "r_vignettes", "render_python", "render_r", "main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def python_vignettes() -> list[Path]:
    """The Python vignettes, in reading order."""
    return sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "render.py")


def r_vignettes() -> list[Path]:
    """The R Markdown vignettes."""
    return sorted(HERE.glob("*.Rmd"))


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    env.setdefault("MPLBACKEND", "Agg")
    venv_bin = ROOT / ".venv" / "bin"
    if venv_bin.is_dir():
        env["PATH"] = os.pathsep.join([str(venv_bin), env.get("PATH", "")])
    if (ROOT / ".rlib").is_dir():
        env.setdefault("R_LIBS_USER", str(ROOT / ".rlib"))
    return env


def render_python(path: Path, out: Path, *, timeout: int = 600) -> Path:
    """Execute one jupytext vignette and write ``<name>.html`` and ``<name>.ipynb`` into ``out``.

    Parameters
    ----------
    path : Path
        A percent-format ``.py`` file.
    out : Path
        Output directory.
    timeout : int, default 600
        Seconds allowed per cell.

    Returns
    -------
    Path
        The HTML file.
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    from simpert._io import write_text_atomic

    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    old = dict(os.environ)
    os.environ.update(_env())
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    html, _ = HTMLExporter().from_notebook_node(nb)
    for target, text in ((out / f"{path.stem}.ipynb", nbformat.writes(nb)), (out / f"{path.stem}.html", html)):
        write_text_atomic(target, text)
        target.chmod(0o644)
    return out / f"{path.stem}.html"


def render_r(path: Path, out: Path) -> Path:
    """Render one R Markdown vignette with ``rmarkdown::render`` into ``out``.

    Parameters
    ----------
    path : Path
        An ``.Rmd`` file.
    out : Path
        Output directory.

    Returns
    -------
    Path
        The HTML file.
    """
    if shutil.which("Rscript") is None:
        raise RuntimeError("Rscript is not on PATH: the R vignette needs R (see tools/install_r.sh)")
    work = out / f".{path.stem}.work"
    work.mkdir(parents=True, exist_ok=True)
    expr = (f"rmarkdown::render({str(path)!r}, output_dir = {str(work)!r}, "
            f"intermediates_dir = {str(work)!r}, knit_root_dir = {str(path.parent)!r}, quiet = TRUE)")
    proc = subprocess.run(["Rscript", "-e", expr], env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"rendering {path.name} failed:\n{proc.stderr[-4000:]}")
    target = out / f"{path.stem}.html"
    os.replace(work / f"{path.stem}.html", target)
    shutil.rmtree(work, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m vignettes.render", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="vignette names (stems) to render; default all")
    parser.add_argument("--out", type=Path, default=HERE / "_build", help="output directory")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per notebook cell")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [p for p in python_vignettes() + r_vignettes() if not args.only or p.stem in args.only]
    if args.only and len(todo) != len(set(args.only)):
        known = [p.stem for p in python_vignettes() + r_vignettes()]
        print(f"error: unknown vignette in {args.only}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    failed = []
    for path in todo:
        t0 = time.perf_counter()
        try:
            html = render_r(path, args.out) if path.suffix == ".Rmd" else render_python(path, args.out, timeout=args.timeout)
            print(f"rendered {path.name} -> {html} ({time.perf_counter() - t0:.0f} s)")
        except Exception as err:  # noqa: BLE001 - report every vignette, then fail
            failed.append(path.name)
            print(f"error: {path.name}: {type(err).__name__}: {err}", file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} vignette(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
