"""``python -m simpert.cli``: the ``simpert`` command line."""

from . import main

main()
