"""Validation runs of RatingRBM settings (how the defaults were chosen).

Protocol: ML-1M 90/10 random split of all ratings (seed 0), 5% of the training ratings
carved out as validation (seed 100); or ML-100K fold u1 with 5% of u1.base as validation.
Model selection reads only the VALIDATION column; the test column is printed for the record.

Usage::

    RBMREC_DATA_DIR=../shared/datasets python benchmarks/tune_rating.py --dataset ml-1m \
        --params "orientation='item', n_hidden=200, conditional=True, weight_decay=0.002"
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rbmrec.models.rating import RatingRBM


def _kwargs(text: str) -> dict:
    tree = ast.parse(f"f({text})", mode="eval")
    return {kw.arg: ast.literal_eval(kw.value) for kw in tree.body.keywords}


def _split(dataset: str, root: Path):
    if dataset == "ml-1m":
        raw = (root / "ml-1m" / "ratings_no_timestamps.dat").read_text(encoding="latin-1")
        a = np.array(raw.replace("::", " ").split(), dtype=np.int64).reshape(-1, 3)
        u = np.unique(a[:, 0], return_inverse=True)[1]
        i = np.unique(a[:, 1], return_inverse=True)[1]
        r = a[:, 2].astype(np.float32)
        perm = np.random.default_rng(0).permutation(len(r))
        test, train = perm[: len(r) // 10], perm[len(r) // 10 :]
    else:
        base = np.loadtxt(root / "ml-100k" / "u1.base", dtype=np.int64)
        tst = np.loadtxt(root / "ml-100k" / "u1.test", dtype=np.int64)
        a = np.vstack([base, tst])
        u, i, r = a[:, 0] - 1, a[:, 1] - 1, a[:, 2].astype(np.float32)
        train, test = np.arange(len(base)), np.arange(len(base), len(a))
    m = np.random.default_rng(100).random(len(train)) < 0.05
    shape = (int(u.max()) + 1, int(i.max()) + 1)

    def mk(s):
        return sp.csr_matrix((r[s], (u[s], i[s])), shape=shape)

    return mk(train[~m]), mk(train[m]), (u[test], i[test], r[test])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=["ml-1m", "ml-100k"], default="ml-100k")
    p.add_argument("--data-dir", default=os.environ.get("RBMREC_DATA_DIR", "../shared/datasets"))
    p.add_argument("--params", default="", help="RatingRBM keyword arguments, Python syntax")
    args = p.parse_args()
    kw = {"random_state": 0, "n_epochs": 40, **_kwargs(args.params)}
    train, valid, (tu, ti, tr) = _split(args.dataset, Path(args.data_dir))
    t0 = time.perf_counter()
    model = RatingRBM(**kw).fit(train, validation=valid)
    test_rmse = float(np.sqrt(np.mean((model.predict(tu, ti) - tr) ** 2)))
    best = min(h["valid_rmse"] for h in model.history_)
    epoch_s = np.mean([h["seconds"] for h in model.history_])
    print(
        f"{args.dataset} {kw}: valid_rmse={best:.4f} test_rmse={test_rmse:.4f} "
        f"best_epoch={model.best_epoch_} fit={time.perf_counter() - t0:.0f}s epoch={epoch_s:.1f}s"
    )


if __name__ == "__main__":
    main()
