"""Executable vignettes (jupytext percent-format ``.py`` files and one R Markdown file).

``python -m vignettes.render`` executes them and writes HTML into ``vignettes/_build``.
"""

__all__: list[str] = []
