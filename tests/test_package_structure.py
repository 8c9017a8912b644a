"""The package's shape (docs/architecture.md): layers import only downwards (engine ->
models -> data/evaluation -> bundle/distributed -> cli), no module over 800 lines, no
function outside the kernels over 100 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rbmrec"

#: Layer of each top-level module or subpackage; a module may import its own layer or below.
RANK = {
    "errors": 0, "_progress": 0, "engine": 0,
    "models": 1, "testing": 1,
    "data": 2, "evaluation": 2,
    "bundle": 3, "distributed": 3,
    "cli": 4,
    "__init__": 5, "__main__": 5,
}  # fmt: skip


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rbmrec"):
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("rbmrec")]
    return found


def _layer(parts: tuple[str, ...]) -> str:
    return parts[0].removesuffix(".py")


def test_every_module_has_a_layer():
    tops = {_layer(p.relative_to(PACKAGE).parts) for p in PACKAGE.rglob("*.py")}
    assert tops <= set(RANK), f"modules without a layer: {tops - set(RANK)}"


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_imports_go_only_downwards(path: Path):
    own = _layer(path.relative_to(PACKAGE).parts)
    for module, names in _imports(path):
        parts = module.split(".")[1:]
        if not parts:  # from rbmrec import ...: only the version string below the top
            assert own in ("__init__", "__main__") or names == ["__version__"], (module, names)
            continue
        assert RANK[parts[0]] <= RANK[own], f"{path.name} ({own}) imports {module}"


MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 100


def test_no_module_is_over_the_size_limit():
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    over = {str(p.relative_to(PACKAGE)): n for p, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not over


def test_no_function_outside_the_kernels_is_over_the_size_limit():
    over = {}
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "engine":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # def to last line, docstring included
                if n > MAX_FUNCTION_LINES:
                    over[f"{path.relative_to(PACKAGE)}:{node.name}"] = n
    assert not over
