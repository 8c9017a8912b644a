"""The scripts of ``benchmarks/`` as modules, for tests, loaded from their files.

The folder is no package and the tests leave ``sys.path`` alone: each script is loaded by
path under its own name (its name in ``sys.modules``, so a script that imports another, as
``topn`` imports ``_common``, and dataclasses defined in a script, find it there).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as the module ``name`` (loaded once, then reused).

    Parameters
    ----------
    name : str
        The script's file name without ``.py``, e.g. ``"speed"`` or ``"_common"``.

    Returns
    -------
    types.ModuleType
    """
    path = BENCHMARKS / f"{name}.py"
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the benchmark script {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
