"""A small printable table returned by the ``summary()`` methods of the theory results."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["TheorySummary"]


@dataclass(frozen=True)
class TheorySummary:
    """A titled table with notes; printing it shows a readable text table.

    Attributes
    ----------
    title : str
        One-line title.
    table : DataFrame
        The numbers.
    notes : tuple of str
        Lines printed under the table (formulas, assumptions).
    """

    title: str
    table: pd.DataFrame
    notes: tuple = field(default_factory=tuple)

    def __str__(self) -> str:
        with pd.option_context("display.float_format", "{:.6g}".format, "display.width", 120):
            body = self.table.to_string()
        width = max([len(self.title)] + [len(line) for line in body.splitlines()])
        rule = "=" * width
        lines = [rule, self.title, rule, body, "-" * width]
        lines += list(self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:  # pragma: no cover - notebook display
        notes = "".join(f"<br><small>{n}</small>" for n in self.notes)
        return f"<b>{self.title}</b>" + self.table.to_html(float_format="{:.6g}".format) + notes
