"""simpert.predict."""

__all__: list[str] = []
