"""simpert.de."""

__all__: list[str] = []
