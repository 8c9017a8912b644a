"""Project exception classes.

All inherit from the built-in class a caller would expect (``ValueError`` for bad data or
parameters), so ``except ValueError`` keeps working while ``except RBMRecError`` catches
everything the library raises on purpose.
"""

from __future__ import annotations


class RBMRecError(Exception):
    """Base class of every exception rbmrec raises on purpose."""


class DataError(RBMRecError, ValueError):
    """Malformed or inconsistent input data (files, frames, matrices)."""


class NotFittedError(RBMRecError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class TrainingDivergedError(RBMRecError, FloatingPointError):
    """Training produced NaN or infinite parameters; the message names epoch and settings."""


class ModelFileError(RBMRecError, ValueError):
    """A saved model file is corrupted, foreign, or from an incompatible version."""


class DownloadError(RBMRecError, OSError):
    """A dataset could not be downloaded or failed its checksum."""


class UnknownUserError(RBMRecError, IndexError):
    """A user index outside the users a model knows (``recommend``'s ``userid``)."""
