"""Kernels loaded from Numba's on-disk cache in a new process (issue: segfault on reload)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# softmax_cd with its neg_mode given (the factored RatingRBM's call), then without it (the
# generic RBM's call), each in a process of its own. The second signature is compiled while
# its parallel callees come from the cache; loading it first in a third process crashed
# (Numba issues #4807, #8578) before rbmrec.engine started the threading layer on import.
_CALL = """
import sys
import numpy as np
from rbmrec.engine import softmax as K

rng = np.random.default_rng(0)
n_rows, n_items, n_levels, n_hidden = 6, 5, 3, 4
levels = rng.integers(0, n_levels, n_rows * n_items).astype(np.int8)
indptr = np.arange(0, n_rows * n_items + 1, n_items, dtype=np.int64)
indices = np.tile(np.arange(n_items, dtype=np.int32), n_rows)
W = rng.normal(0, 0.1, (n_items, n_levels, n_hidden)).astype(np.float32)
b = np.zeros((n_items, n_levels), np.float32)
c = np.zeros(n_hidden, np.float32)
rows = np.arange(n_rows, dtype=np.int64)
args = (
    indptr, indices, levels, rows, W, b, c, np.zeros((0, n_hidden), np.float32), 1,
    np.arange(1, n_rows + 1, dtype=np.uint64), np.zeros(0, np.int8), False,
    np.empty_like(W), np.empty_like(b), np.empty_like(c), np.empty((n_rows, n_hidden), np.float32),
)
stats = K.softmax_cd(*args, K.NEG_MEAN_FIELD) if sys.argv[1] == "given" else K.softmax_cd(*args)
print(int(stats[1]))
"""


def test_kernels_reload_from_a_cache_built_over_several_processes(tmp_path: Path) -> None:
    script = tmp_path / "call.py"
    script.write_text(_CALL)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_NUM_THREADS": "2"}
    for mode in ("given", "omitted", "omitted"):
        run = subprocess.run(
            [sys.executable, str(script), mode], env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert run.returncode == 0, (
            f"softmax_cd ({mode} neg_mode) failed with {run.returncode} "
            f"(-11: segmentation fault):\n{run.stderr[-2000:]}"
        )
        assert run.stdout.split() == ["30"]
