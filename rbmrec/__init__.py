"""rbmrec: collaborative filtering with restricted Boltzmann machines.

The public names are imported lazily so that ``import rbmrec`` stays fast and the data
layer can be used without compiling any kernel.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "RBM": "rbmrec.models.rbm",
    "RatingRBM": "rbmrec.models.rating",
    "ImplicitRBM": "rbmrec.models.implicit",
    "load": "rbmrec.models.persistence",
    "save": "rbmrec.models.persistence",
    "ModelBundle": "rbmrec.bundle",
}

__all__ = ["RBM", "ImplicitRBM", "ModelBundle", "RatingRBM", "__version__", "load", "save"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rbmrec' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
