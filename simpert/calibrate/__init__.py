"""simpert.calibrate."""

__all__: list[str] = []
