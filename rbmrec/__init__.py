"""rbmrec: collaborative filtering with restricted Boltzmann machines."""

from __future__ import annotations

__version__ = "0.1.0"
