"""Griffe extension for the API pages (``mkdocs.yml`` loads it).

- ``rbmrec/__init__.py`` resolves ``rbmrec.RBM`` and the other top-level names through a
  module ``__getattr__`` and its ``_LAZY`` table, so that ``import rbmrec`` compiles nothing.
  Static analysis cannot see those names; one alias per table entry lets the pages document
  the public paths (``::: rbmrec.RatingRBM``) instead of the defining modules.
- The docstrings use Sphinx roles (``:class:`~rbmrec.data.Ratings```), which Markdown does
  not know; they are shown as inline code (the last path component when ``~`` asks for it).
"""

from __future__ import annotations

import ast
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|ref):`(~?)([^`]+)`")


def _plain_role(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _strip_roles(obj: griffe.Object) -> None:
    if obj.docstring is not None:
        obj.docstring.value = _ROLE.sub(_plain_role, obj.docstring.value)
    for member in obj.members.values():
        if not member.is_alias:
            _strip_roles(member)


class RbmrecDocs(griffe.Extension):
    """Add the lazily imported names of ``rbmrec`` and make Sphinx roles inline code."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "rbmrec":
            return
        _strip_roles(pkg)
        if "_LAZY" not in pkg.members:
            return
        table = ast.literal_eval(str(pkg.members["_LAZY"].value))
        for name, module in table.items():
            if name not in pkg.members:
                pkg.set_member(name, griffe.Alias(name, f"{module}.{name}", parent=pkg))
