"""simpert.pl: matplotlib figures.

- :func:`calibration_card`: one metric's calibration card.
- :func:`calibration_heatmap`: one calibration statistic, metrics x scenarios.
"""

from ._calibration import calibration_card, calibration_heatmap

__all__ = ["calibration_card", "calibration_heatmap"]
