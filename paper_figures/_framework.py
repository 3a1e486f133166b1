"""Compute / plot split for the paper figures, with a cache and a provenance sidecar.

A figure module defines::

    NAME = "fig1_noise_only"          # file stem of the outputs
    TITLE = "..."                     # one line
    def compute(*, fast: bool, rng) -> dict[str, pandas.DataFrame]
    def plot(tables) -> matplotlib.figure.Figure
    def caption(tables) -> str        # what the figure shows and this run's key numbers

The driver caches ``compute``'s tables in ``paper_figures/cache/NAME/`` (parquet) with a
``sidecar.json`` (seed, git revision, package versions, fast flag, source hash) and rebuilds
only when the figure module or the package source changed, or the outputs are missing.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import platform
import subprocess
import time
from pathlib import Path

import pandas as pd

from simpert._io import atomic_path, write_text_atomic

__all__ = ["FIGURES", "ROOT", "build_figure", "source_hash"]

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
FIGURES = (
    "fig1_noise_only",
    "fig2_bias_variance",
    "fig3_var_network",
    "fig4_calibration_heatmap",
    "fig5_target_gene",
    "fig6_systematic",
    "fig7_weights",
    "fig8_de_shrinkage",
    "fig9_difficulty",
    "fig10_vcc2026",
    "fig11_power",
    "fig12_planted",
)
SEED = 20251121
_PACKAGES = ("simpert", "numpy", "scipy", "pandas", "anndata", "matplotlib", "cell-eval", "pydeseq2")


def source_hash(module_name: str) -> str:
    """Hash of the figure module's source and of every simpert source file."""
    h = hashlib.sha256()
    files = [ROOT / f"{module_name}.py", ROOT / "_framework.py"]
    files += sorted((REPO / "simpert").rglob("*.py"))
    files += sorted((REPO / "simulations").glob("*.toml"))
    for f in files:
        if f.exists():
            h.update(f.relative_to(REPO).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        rev = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=10)
        return rev + ("-dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _write_tables(tables: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for key, df in tables.items():
        with atomic_path(folder / f"{key}.parquet") as tmp:
            df.to_parquet(tmp)


def _read_tables(folder: Path) -> dict:
    return {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def build_figure(module_name: str, *, fast: bool, out_dir: Path, cache_dir: Path, force: bool = False) -> dict:
    """Compute (or reuse cached) tables for one figure, then plot PNG + PDF and a caption.

    Returns a dict with keys ``name``, ``status`` ("built", "cached"), ``seconds``, ``outputs``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mod = importlib.import_module(f"paper_figures.{module_name}")
    start = time.perf_counter()
    key = source_hash(module_name)
    cache = cache_dir / (module_name + ("_fast" if fast else ""))
    sidecar_path = cache / "sidecar.json"
    outputs = [out_dir / f"{module_name}.png", out_dir / f"{module_name}.pdf", out_dir / f"{module_name}.txt"]
    sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.exists() else {}
    fresh = (not force) and sidecar.get("source_hash") == key and sidecar.get("fast") == fast
    if fresh and all(p.exists() for p in outputs):
        return {"name": module_name, "status": "cached", "seconds": 0.0, "outputs": outputs}
    if fresh:
        tables = _read_tables(cache)
        status = "replotted"
    else:
        tables = mod.compute(fast=fast, rng=SEED)
        _write_tables(tables, cache)
        write_text_atomic(
            sidecar_path,
            json.dumps(
                {
                    "figure": module_name,
                    "seed": SEED,
                    "fast": fast,
                    "source_hash": key,
                    "git_revision": _git_revision(),
                    "versions": _versions(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "tables": sorted(tables),
                },
                indent=2,
            ),
        )
        status = "built"
    fig = mod.plot(tables)
    out_dir.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        with atomic_path(out_dir / f"{module_name}{suffix}") as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=suffix[1:])
    plt.close(fig)
    text = f"{mod.TITLE}\n\n{mod.caption(tables).strip()}\n\n(seed {SEED}, {'fast' if fast else 'full'} run, source {key})\n"
    write_text_atomic(out_dir / f"{module_name}.txt", text)
    return {"name": module_name, "status": status, "seconds": time.perf_counter() - start, "outputs": outputs}
