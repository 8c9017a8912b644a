"""Validation runs of RatingRBM settings (how the defaults were chosen).

Protocols (``--protocol``):

- ``benchmark`` (default): the splits of ``rating_accuracy.py``, so a setting tuned here is
  the one its table measures. ML-100K: official folds (``--folds``, default u1..u5), 5% of
  each base carved out as validation; ML-1M: 90/10 random splits of all ratings, one per
  seed in ``--seeds`` (default 0), 5% of train as validation. Prints the mean and standard
  deviation of the validation RMSE over splits and nothing about the test ratings.
- ``nested``: the call most users make, ``RatingRBM(...).fit(train)`` with nothing else
  passed (``fit`` holds out its own validation part), scored on an outer 10% carve of each
  training part that ``fit`` never sees: ML-100K folds ``--folds``, ML-1M 90/10 splits of
  ``--seeds``. Settings run interleaved split by split, so the printed fit-time ratio to the
  first setting compares runs made side by side. Prints the validation RMSE and each
  member's best epoch.
- ``legacy``: the older single split (ML-1M seed 0 with a seed-100 validation carve, or
  ML-100K u1) that the defaults of commit 481c2e1 were chosen on; it prints the test RMSE
  too, for the record.

Model selection reads only the validation RMSE. Each ``--params`` string is one setting;
several can be given and run one after another.

Usage::

    RBMREC_DATA_DIR=../shared/datasets python benchmarks/tune_rating.py --dataset ml-100k \\
        --params "" "n_hidden=1000" "lr_decay=0.97"
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.models.rating import RatingRBM


def _kwargs(text: str) -> dict[str, Any]:
    """``"a=1, b='x'"`` -> ``{"a": 1, "b": "x"}`` (literals only)."""
    tree = ast.parse(f"f({text})", mode="eval")
    return {kw.arg: ast.literal_eval(kw.value) for kw in tree.body.keywords}


def _legacy_split(dataset: str, root: Path) -> tuple[Any, Any, tuple[Any, Any, Any]]:
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

    def mk(s: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((r[s], (u[s], i[s])), shape=shape)

    return mk(train[~m]), mk(train[m]), (u[test], i[test], r[test])


def _benchmark_splits(args: argparse.Namespace, validation_fraction: float = 0.05) -> list[Any]:
    """The validation-carrying splits ``rating_accuracy.py`` uses (same seeds; its 5%
    validation part, or ``validation_fraction``)."""
    from rbmrec.data import load_movielens, movielens_folds, random_split

    root = Path(args.data_dir)
    if args.dataset == "ml-100k":
        folds = [f.strip() for f in args.folds.split(",") if f.strip()]
        return movielens_folds(
            root / "ml-100k", folds=folds, validation_fraction=validation_fraction, seed=0
        )  # fmt: skip
    data = load_movielens(root / "ml-1m", metadata=False)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    return [
        random_split(data, test_fraction=0.1, seed=s, validation_fraction=validation_fraction)
        for s in seeds
    ]


def _valid_and_epochs(model: RatingRBM, valid: sp.spmatrix) -> tuple[float, float]:
    """Validation RMSE and best epoch of a fitted model. A single RBM: its best epoch's
    validation RMSE; ``orientation="both"``: the RMSE of the mixture (its history holds the
    members' curves) and the mean of the members' best epochs."""
    members = getattr(model, "members_", None)
    if members is None:
        best = min(h["valid_rmse"] for h in model.history_)
        return best, float(model.best_epoch_ or len(model.history_))
    u, i = valid.nonzero()
    err = model.predict(u, i) - np.asarray(valid[u, i]).ravel()
    return float(np.sqrt(np.mean(err**2))), float(
        np.mean([_valid_and_epochs(m, valid)[1] for m in members.values()])
    )


def _nested(args: argparse.Namespace, settings: list[str]) -> None:
    """The ``nested`` protocol: ``fit(train)`` alone, scored on an outer 10% carve."""
    splits = _benchmark_splits(args, validation_fraction=0.1)
    rows: dict[str, list[tuple[float, list[int], float]]] = {t: [] for t in settings}
    for split in splits:
        u, i = split.validation.nonzero()
        r = np.asarray(split.validation[u, i]).ravel()
        for text in settings:
            kw = {"random_state": 0, "num_threads": args.threads, **_kwargs(text)}
            model = RatingRBM(**kw).fit(split.train)
            rmse = float(np.sqrt(np.mean((model.predict(u, i) - r) ** 2)))
            best = model.best_epoch_
            epochs = list(best.values()) if isinstance(best, dict) else [best]
            rows[text].append((rmse, epochs, model.fit_seconds_))
            print(f"  [{text}] valid_rmse={rmse:.4f} best_epochs={epochs} "
                  f"fit={model.fit_seconds_:.1f}s", flush=True)  # fmt: skip
    base = np.array([x[2] for x in rows[settings[0]]])
    for text, res in rows.items():
        valid = [x[0] for x in res]
        epochs = np.mean([x[1] for x in res], axis=0).round(1).tolist()
        ratio = float(np.mean(np.array([x[2] for x in res]) / base))
        print(
            f"{args.dataset} nested [{text}] valid_rmse={np.mean(valid):.4f} over {len(res)} "
            f"split(s) {np.round(valid, 4).tolist()} best_epochs={epochs} "
            f"fit_time_ratio={ratio:.2f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=["ml-1m", "ml-100k"], default="ml-100k")
    p.add_argument("--data-dir", default=os.environ.get("RBMREC_DATA_DIR", "../shared/datasets"))
    p.add_argument(
        "--protocol", choices=["benchmark", "nested", "legacy"], default="benchmark"
    )  # fmt: skip
    p.add_argument("--folds", default="u1,u2,u3,u4,u5", help="ML-100K folds (benchmark)")
    p.add_argument("--seeds", default="0", help="ML-1M split seeds (benchmark)")
    p.add_argument("--threads", type=int, default=1, help="numba threads")
    p.add_argument(
        "--params", nargs="*", default=[""],
        help="RatingRBM keyword arguments in Python syntax, one string per setting",
    )  # fmt: skip
    args = p.parse_args(argv)
    settings = args.params or [""]
    if args.protocol == "legacy":
        # The legacy runs used 40 epochs unless --params said otherwise.
        train, valid, (tu, ti, tr) = _legacy_split(args.dataset, Path(args.data_dir))
        for text in settings:
            kw = {"random_state": 0, "n_epochs": 40, "num_threads": args.threads, **_kwargs(text)}
            t0 = time.perf_counter()
            model = RatingRBM(**kw).fit(train, validation=valid)
            test_rmse = float(np.sqrt(np.mean((model.predict(tu, ti) - tr) ** 2)))
            best = _valid_and_epochs(model, valid)[0]
            print(
                f"{args.dataset} {kw}: valid_rmse={best:.4f} test_rmse={test_rmse:.4f} "
                f"best_epoch={model.best_epoch_} fit={time.perf_counter() - t0:.0f}s",
                flush=True,
            )
        return
    if args.protocol == "nested":
        _nested(args, settings)
        return
    splits = _benchmark_splits(args)
    for text in settings:
        kw = {"random_state": 0, "num_threads": args.threads, **_kwargs(text)}
        valid, epochs, secs = [], [], []
        for split in splits:
            t0 = time.perf_counter()
            model = RatingRBM(**kw).fit(split.train, validation=split.validation)
            secs.append(time.perf_counter() - t0)
            v, e = _valid_and_epochs(model, split.validation)
            valid.append(v)
            epochs.append(e)
        std = float(np.std(valid, ddof=1)) if len(valid) > 1 else float("nan")
        print(
            f"{args.dataset} [{text}] valid_rmse={np.mean(valid):.4f} +- {std:.4f} over "
            f"{len(splits)} split(s) {np.round(valid, 4).tolist()} best_epoch="
            f"{np.mean(epochs):.0f} fit={np.mean(secs):.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
