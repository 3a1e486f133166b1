"""simpert.pl."""

__all__: list[str] = []
