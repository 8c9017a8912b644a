"""Kernels loaded from Numba's on-disk cache in a new process (a segfault on reload)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# softmax_cd with its neg_mode given (the factored RatingRBM's call), then without it (the
# generic RBM's call), each in a process of its own. The second signature is compiled while
# its parallel callees come from the cache; loading it first in a third process crashed
# (numba GitHub reports 4807 and 8578) before rbmrec.engine started the threading layer on import.
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


# Training on synthetic data, printing a digest of each model's top-5 lists and scores. Run
# twice against one cache folder: the first process compiles every kernel, the second loads
# them.
_FIT = """
import hashlib
import numpy as np
import rbmrec
from rbmrec.data import make_ratings

X = make_ratings(60, 40, density=0.3, seed=0).user_items
# The span kernels with the fused weight update, persistent chains and the conditional
# update, then the inference and top-N kernels: the rating RBM's whole compiled path.
fits = [
    rbmrec.RatingRBM(orientation="user", conditional=False, n_hidden=8, n_epochs=2,
                     persistent=True, cd_steps=2, random_state=1),
    rbmrec.RatingRBM(orientation="item", n_hidden=8, n_epochs=2, random_state=1),  # conditional
]
users = np.arange(X.shape[0])
for m in fits:
    m.fit(X)
    ids, scores = m.recommend(users, X, N=5)  # the inference kernels too
    print(hashlib.sha256(ids.tobytes() + np.asarray(scores).tobytes()).hexdigest()[:16])
"""


def test_a_compiling_run_trains_like_a_run_from_the_cache(tmp_path: Path) -> None:
    """The code LLVM compiles in a process and the same kernels loaded from Numba's cache
    must compute the same bits. With reassociation allowed in the fused weight update they
    did not, so the first run after an install trained differently from the next ones."""
    script = tmp_path / "fit.py"
    script.write_text(_FIT)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_NUM_THREADS": "2"}
    digests = []
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=900
        )
        assert run.returncode == 0, run.stderr[-2000:]
        digests.append(run.stdout.split())
    assert len(digests[0]) == 2
    assert digests[0] == digests[1]
