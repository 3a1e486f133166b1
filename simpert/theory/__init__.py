"""simpert.theory."""

__all__: list[str] = []
