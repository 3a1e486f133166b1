"""Sphinx configuration of the simpert site (``make docs``; warnings are errors).

The pages under api/, vignettes/, gallery/, metric/, r/ and which_metric.md are written by
``tools/build_docs.py`` before Sphinx runs; the hand-written pages are index.md and the
wrappers of docs/*.md.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
# the vignettes' kernels inherit this environment: their figures must be displayed inline
# (make exports MPLBACKEND=Agg, which would draw them nowhere)
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

import simpert  # noqa: E402

project = "simpert"
author = "the simpert authors"
copyright = "2026, the simpert authors"
release = version = simpert.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]

exclude_patterns = ["conf.py", "_build", "**/.ipynb_checkpoints", "**/*.ipynb_checkpoints"]
templates_path = []
html_theme = "furo"
html_title = f"simpert {release}"
html_static_path = []
html_copy_source = False
html_show_sourcelink = False

# API reference: numpydoc over autodoc; one page per public name (autosummary stubs)
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Markdown and notebooks: the vignettes are jupytext percent-format .py files, executed
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 6
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
# executed outputs are cached per state of the package's sources: a change to simpert
# re-executes every vignette, an unchanged tree reuses the outputs
def _sources_key() -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted((ROOT / "simpert").rglob("*.py")) + sorted((ROOT / "simulations").glob("*.toml")) + [
            Path(__file__).resolve()]:
        h.update(p.relative_to(ROOT).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


_JCACHE = ROOT / "docs" / "_build" / "jupyter_cache"
_KEY = _sources_key()
if _JCACHE.is_dir():
    import shutil

    for _old in _JCACHE.iterdir():
        if _old.name != _KEY:
            shutil.rmtree(_old, ignore_errors=True)
nb_execution_mode = "cache"
nb_execution_cache_path = str(_JCACHE / _KEY)
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

nitpicky = False


# Docstrings write absolute values as |x| (plain text for a reader of the source); in
# reStructuredText that is a substitution reference. Escape such pairs outside literals.
_ABS = re.compile(r"(?<![\\|`\w])\|(?=[^\s|])([^|`\n]*?[^\s|\\])\|(?![|_\w])")
_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")


def _escape_abs(line: str) -> str:
    if line.lstrip().startswith(("|", "+-", "+=", ">>>", "...")):
        return line
    parts = _LITERAL.split(line)
    return "".join(p if i % 2 else _ABS.sub(r"\\|\1\\|", p) for i, p in enumerate(parts))


def _process_docstring(app, what, name, obj, options, lines):
    lines[:] = [_escape_abs(ln) for ln in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)
