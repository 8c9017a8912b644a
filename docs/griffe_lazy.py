"""Griffe extension: make the lazily imported top-level names visible to mkdocstrings.

``rbmrec/__init__.py`` resolves ``rbmrec.RBM`` and friends through a module ``__getattr__``
and its ``_LAZY`` table (so ``import rbmrec`` compiles nothing). Static analysis cannot see
those names; this extension adds one alias per table entry, so the API pages can document
the public paths (``::: rbmrec.RatingRBM``) instead of the defining modules.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe


class LazyExports(griffe.Extension):
    """Add an alias for every ``name -> module`` entry of ``rbmrec._LAZY``."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "rbmrec" or "_LAZY" not in pkg.members:
            return
        table = ast.literal_eval(str(pkg.members["_LAZY"].value))
        for name, module in table.items():
            if name not in pkg.members:
                pkg.set_member(name, griffe.Alias(name, f"{module}.{name}", parent=pkg))
