"""Data layer: loaders, the Ratings container, splits and synthetic data."""

from rbmrec.data.split import Split

__all__ = ["Split"]
