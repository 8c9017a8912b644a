"""The ``rbmrec`` command line: demo, fit, recommend, evaluate, benchmark, datasets.

Every sub-command prints for a person reading a terminal (the library itself only logs).
Exit codes: 0 success, 2 usage or data error (the message names the problem), 1 anything
unexpected (with a traceback).

A fitted model is written as ``<out>.npz`` (see :func:`rbmrec.load`) plus two side files
that let ``recommend`` speak in the ids of the user's files:

- ``<out>.npz.ids.json``: ``{"user_ids": [...], "item_ids": [...], "titles": [...] | null,
  "data": "...", "model": "..."}``, raw ids in index order;
- ``<out>.npz.seen.npz``: the training ratings (scipy sparse, users x items), used to
  exclude already-rated items.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["main"]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2

_SYNTHETIC_WORDS = ("demo", "synthetic")
_MODEL_KEYS = ("rbm", "irbm", "als", "bpr", "pop", "bias")
_MODEL_NAMES = {
    "rbm": "RatingRBM",
    "irbm": "ImplicitRBM",
    "als": "ALS",
    "bpr": "BPR",
    "pop": "Popularity",
    "bias": "Bias",
}


#: Each RBM's main training kernel: when its Numba cache index is missing, this process
#: compiles the kernels (once per installation and source version).
_KEY_KERNELS = {
    "rbm": ("rbmrec.engine.softmax", "softmax_cd_phases"),
    "irbm": ("rbmrec.engine.implicit", "csr_hidden_probs"),
}


class UsageError(Exception):
    """A problem with the command's arguments or inputs; exit code 2."""


def _uncompiled(keys: Sequence[str]) -> list[str]:
    """Names of the models among ``keys`` whose kernels are not in Numba's on-disk cache.

    Looks for the cache index file of each model's main training kernel (where
    ``NUMBA_CACHE_DIR`` or the package's ``__pycache__`` puts it). A model whose kernel
    cannot be checked (Numba's internals moved) is left out: the note is a courtesy.
    """
    names = []
    for key in keys:
        if key not in _KEY_KERNELS:
            continue
        module, kernel = _KEY_KERNELS[key]
        try:
            dispatcher = getattr(importlib.import_module(module), kernel)
            index = dispatcher._cache._cache_file._index_path
        except (ImportError, AttributeError):
            continue
        if not os.path.exists(index):
            names.append(_MODEL_NAMES[key])
    return names


def _compile_note(keys: Sequence[str]) -> None:
    """Tell the user, on stderr, that the first fit pauses to compile the kernels."""
    names = _uncompiled(keys)
    if names:
        print(
            f"note: first run of {' and '.join(names)} here: compiling the Numba kernels "
            "(up to a minute, once); later runs load them from the cache",
            file=sys.stderr,
            flush=True,
        )


def _err(message: str) -> None:
    print(f"rbmrec: error: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- data


def _demo_ratings() -> Any:
    from rbmrec.data import demo_ratings

    return demo_ratings()


def _load_dataset(name: str) -> Any:
    """A named data set (``demo`` or a MovieLens release, downloaded once when missing)."""
    from rbmrec import datasets

    if name.lower() in _SYNTHETIC_WORDS:
        return _demo_ratings()
    return datasets.load(name.lower())


def _load_table(path: Path, user_col: str, item_col: str, rating_col: str) -> Any:
    """A CSV/TSV/parquet file of ratings (titles kept when the file has a ``title`` column)."""
    import polars as pl

    from rbmrec.data import load_table

    items = None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet"):
        try:
            if suffix == ".parquet":
                head = pl.read_parquet(path)
            else:
                head = pl.read_csv(path, separator="\t" if suffix == ".tsv" else ",")
        except Exception:  # unreadable here: load_table names the problem below
            head = None
        if head is not None and "title" in head.columns and item_col in head.columns:
            items = head.select(pl.col(item_col).alias("item_id"), pl.col("title")).unique(
                "item_id", keep="first", maintain_order=True
            )
    from rbmrec.errors import DataError

    try:
        return load_table(path, user=user_col, item=item_col, rating=rating_col, items=items)
    except DataError as exc:
        if "column" in str(exc):
            raise DataError(f"{exc} (command line: --user-col/--item-col/--rating-col)") from exc
        raise


def _load_data(args: argparse.Namespace) -> Any:
    """The Ratings named by ``--data`` or ``--dataset`` (default: the demo data)."""
    data = getattr(args, "data", None)
    dataset = getattr(args, "dataset", None)
    if data and dataset:
        raise UsageError("give either --data or --dataset, not both")
    if dataset:
        return _load_dataset(dataset)
    if not data or data.lower() in _SYNTHETIC_WORDS:
        return _demo_ratings()
    path = Path(data)
    if not path.exists():
        from rbmrec import datasets

        if data.lower() in datasets.list_datasets():
            return _load_dataset(data.lower())
        raise FileNotFoundError(f"--data {data}: no such file or folder")
    if path.is_dir() or path.suffix.lower() == ".zip":
        from rbmrec.data import load_movielens

        return load_movielens(path)
    return _load_table(path, args.user_col, args.item_col, args.rating_col)


def _titles(data: Any) -> list[str] | None:
    if data.items is None or "title" not in data.items.columns:
        return None
    return data.item_titles(np.arange(data.n_items))


def _jsonable_ids(ids: Any) -> list[Any]:
    raw = np.asarray(ids.raw)
    return [str(v) if raw.dtype.kind in "USO" else int(v) for v in raw.tolist()]


# --------------------------------------------------------------------------- models


def _make_model(key: str, args: argparse.Namespace, progress: bool) -> Any:
    """A fresh model for a ``--models`` key with the command's hyperparameters."""
    seed = int(args.seed)
    epochs = getattr(args, "epochs", None)
    if epochs is None:
        epochs = getattr(args, "model_epochs", {}).get(key)
    hidden = getattr(args, "n_hidden", None)
    lr = getattr(args, "learning_rate", None)
    batch = getattr(args, "batch_size", None)
    if key in ("rbm", "irbm"):
        from rbmrec import ImplicitRBM, RatingRBM

        kw: dict[str, Any] = {"num_threads": int(getattr(args, "threads", 0) or 0)}
        for name, value in (
            ("n_hidden", hidden),
            ("n_epochs", epochs),
            ("learning_rate", lr),
            ("batch_size", batch),
        ):
            if value is not None:  # otherwise the model's own default
                kw[name] = value
        if key == "rbm":
            if getattr(args, "orientation", None):
                kw["orientation"] = args.orientation
            return RatingRBM(random_state=seed, progress=progress, **kw)
        return ImplicitRBM(random_state=seed, progress=progress, **kw)
    from rbmrec.evaluation import BiasBaseline, ImplicitALS, ImplicitBPR, Popularity

    if key == "als":
        return ImplicitALS(random_state=seed)
    if key == "bpr":
        return ImplicitBPR(random_state=seed)
    if key == "pop":
        return Popularity()
    if key == "bias":
        return BiasBaseline()
    raise UsageError(f"unknown model {key!r}; choose from {', '.join(_MODEL_KEYS)}")


def _parse_models(text: str) -> list[str]:
    aliases = {
        "rating-rbm": "rbm",
        "implicit-rbm": "irbm",
        "popularity": "pop",
        "baseline": "bias",
    }
    keys = [aliases.get(k.strip().lower(), k.strip().lower()) for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in _MODEL_KEYS]
    if bad or not keys:
        raise UsageError(
            f"--models: unknown model(s) {bad or [text]}; choose from {', '.join(_MODEL_KEYS)}"
        )
    return list(dict.fromkeys(keys))


class _Announced:
    """Wraps a model so the harness's fit prints a header line first (progress for people)."""

    def __init__(self, label: str, model: Any, stream: Any = None) -> None:
        self._label = label
        self._model = model
        self._stream = stream or sys.stdout

    def fit(self, user_items: Any, validation: Any = None) -> Any:
        print(f"fitting {self._label} ...", file=self._stream, flush=True)
        t0 = time.perf_counter()
        if validation is not None and "validation" in inspect.signature(self._model.fit).parameters:
            self._model.fit(user_items, validation=validation)
        else:
            self._model.fit(user_items)
        print(
            f"  {self._label} fitted in {time.perf_counter() - t0:.1f} s",
            file=self._stream,
            flush=True,
        )
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


# --------------------------------------------------------------------------- commands


_TABLE_COLUMNS = (
    "model",
    "rmse",
    "mae",
    "ndcg",
    "precision",
    "recall",
    "hit_rate",
    "coverage",
    "fit_seconds",
    "recommend_seconds",
)


def _table(df: Any) -> str:
    from rbmrec.evaluation import to_markdown

    cols = [c for c in _TABLE_COLUMNS if c in df.columns]
    return to_markdown(df, columns=cols)


def _split(data: Any, args: argparse.Namespace) -> Any:
    from rbmrec.data import random_split

    return random_split(
        data,
        test_fraction=args.test_fraction,
        seed=args.seed,
        validation_fraction=args.validation_fraction,
    )


def _run_comparison(data: Any, keys: Sequence[str], args: argparse.Namespace) -> Any:
    from rbmrec.evaluation import evaluate

    split = _split(data, args)
    print(
        f"split: {split.train.nnz:,} train, "
        f"{0 if split.validation is None else split.validation.nnz:,} validation, "
        f"{split.test.nnz:,} test ratings",
        flush=True,
    )
    models = {
        _MODEL_NAMES[k]: _Announced(_MODEL_NAMES[k], _make_model(k, args, not args.quiet))
        for k in keys
    }
    _compile_note(keys)
    df = evaluate(models, split, K=args.k, relevance_threshold=args.relevance_threshold)
    return df, split, models


def _write_outputs(df: Any, args: argparse.Namespace, meta: dict[str, Any]) -> None:
    from rbmrec.evaluation import write_results

    if args.out:
        path = write_results(df, args.out, metadata=meta)
        print(f"results written to {path}")
    if args.plot:
        path = _plot(df, Path(args.plot), title=meta.get("data", ""))
        print(f"plot written to {path}")


def _plot(df: Any, path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = df["model"].to_list()
    k = df["K"][0] if "K" in df.columns and df.height else 10
    labels = {"rmse": "RMSE (lower is better)", "ndcg": f"NDCG@{k} (higher is better)"}
    panels = [(c, labels[c]) for c in ("rmse", "ndcg") if df[c].null_count() < df.height]
    panels.append(("fit_seconds", "fit seconds"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2))
    axes = np.atleast_1d(axes)
    for ax, (col, label) in zip(axes, panels, strict=True):
        values = [np.nan if v is None else v for v in df[col].to_list()]
        ax.bar(names, values, color="#4477aa")
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _cmd_demo(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    if args.dataset is None and args.data is None:
        from rbmrec import datasets

        if datasets.locate("ml-100k") is not None:
            args.dataset = "ml-100k"
    keys = _parse_models(args.models)
    data = _load_data(args)
    print(f"data: {data!r}")
    # Modest settings so the demo takes well under two minutes on two busy cores; the
    # rating RBM is cheap per epoch, the implicit one (all items per user) is not.
    real = data.n_ratings > 50_000
    args.model_epochs = {"rbm": 30, "irbm": 10} if real else {"rbm": 60, "irbm": 12}
    if args.n_hidden is None:
        args.n_hidden = 64 if real else 50
    if args.threads is None:
        args.threads = 1
    df, split, models = _run_comparison(data, keys, args)
    print()
    print(f"## Comparison on {data.name or 'the data'} (K={args.k})")
    print()
    print(_table(df), end="")
    print(
        f"\nrmse/mae: held-out ratings; ndcg, precision, recall, hit_rate: top-{args.k} lists "
        f"with training items excluded, held-out ratings >= {args.relevance_threshold:g} "
        "relevant; coverage: share of items ever recommended; times in seconds."
    )
    # Sample user: the one with most training ratings, so the lists are personal.
    counts = np.diff(split.train.indptr)
    user = int(np.argmax(counts))
    raw_user = data.user_ids.to_raw(np.array([user]))[0]
    row = split.train[user]
    top = row.indices[np.argsort(-row.data, kind="stable")[:5]]
    print()
    print(f"## Sample user {raw_user} ({counts[user]} training ratings)")
    print()
    print("rated highly: " + "; ".join(data.item_titles(top)))
    for key in ("rbm", "irbm"):
        if key not in keys:
            continue
        model = models[_MODEL_NAMES[key]]
        ids, scores = model.recommend(user, row, N=10)
        print()
        print(f"Top-10 from {_MODEL_NAMES[key]} (score):")
        for rank, (i, s) in enumerate(zip(ids.tolist(), scores.tolist(), strict=True), 1):
            print(f"{rank:3d}. {data.item_titles([i])[0]}  ({s:.3f})")
    _write_outputs(df, args, {"command": "demo", "data": data.name})
    print(f"\ndemo finished in {time.perf_counter() - t_start:.1f} s")
    return EXIT_OK


def _sidecars(model_path: Path) -> tuple[Path, Path]:
    return (
        model_path.with_name(model_path.name + ".ids.json"),
        model_path.with_name(model_path.name + ".seen.npz"),
    )


def _cmd_fit(args: argparse.Namespace) -> int:
    key = _parse_models(args.model)[0]
    if key not in ("rbm", "irbm"):
        raise UsageError(f"--model must be rating-rbm or implicit-rbm, got {args.model!r}")
    data = _load_data(args)
    print(f"data: {data!r}")
    model = _make_model(key, args, progress=not args.quiet)
    validation = None
    train = data.user_items
    if args.validation_fraction > 0:
        from rbmrec.data import random_split

        split = random_split(data, test_fraction=args.validation_fraction, seed=args.seed)
        train, validation = split.train, split.test
    _compile_note([key])
    t0 = time.perf_counter()
    if validation is not None:
        model.fit(train, validation=validation)
    else:
        model.fit(train)
    seconds = time.perf_counter() - t0
    path = Path(model.save(args.out))
    ids_path, seen_path = _sidecars(path)
    doc = {
        "model": _MODEL_NAMES[key],
        "data": data.name,
        "user_ids": _jsonable_ids(data.user_ids),
        "item_ids": _jsonable_ids(data.item_ids),
        "titles": _titles(data),
    }
    ids_path.write_text(json.dumps(doc) + "\n")
    sp.save_npz(seen_path, sp.csr_matrix(data.user_items))
    note = _stopped_note(model)
    print(f"fitted {_MODEL_NAMES[key]} in {seconds:.1f} s{note}")
    print(f"model written to {path} (+ {ids_path.name}, {seen_path.name})")
    return EXIT_OK


def _stopped_note(model: Any) -> str:
    """The suffix ``" (stopped after N epochs)"`` when early stopping or Ctrl-C ended training.

    A RatingRBM with ``orientation="both"`` tags each ``history_`` record with its member
    ("item", "user"): the note then counts per member.
    """
    history = getattr(model, "history_", None) or []
    n_epochs = getattr(model, "n_epochs", len(history))
    counts: dict[str, int] = {}
    for rec in history:
        key = str(rec.get("member", ""))
        counts[key] = counts.get(key, 0) + 1
    if not counts or all(c >= n_epochs for c in counts.values()):
        return ""
    if list(counts) == [""]:
        return f" (stopped after {counts['']} epochs)"
    parts = ", ".join(f"{c} ({k} member)" for k, c in counts.items())
    return f" (stopped after {parts} epochs)"


def _index_of(raw_ids: list[Any], value: str) -> int | None:
    lookup = {str(v): i for i, v in enumerate(raw_ids)}
    return lookup.get(str(value).strip())


def _fold_in_row(path: Path, item_ids: list[Any], n_items: int) -> sp.csr_matrix:
    """A 1 x n_items CSR from a CSV of ``item,rating`` lines (header optional)."""
    if not path.is_file():
        raise FileNotFoundError(f"--ratings {path}: no such file")
    lookup = {str(v): i for i, v in enumerate(item_ids)}
    cols, vals, unknown = [], [], []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.replace("\t", ",").split(",")]
        if len(parts) < 2:
            raise UsageError(f"{path}, line {line_no}: expected 'item,rating', got {line!r}")
        try:
            rating = float(parts[1])
        except ValueError:
            if line_no == 1:
                continue  # header
            raise UsageError(
                f"{path}, line {line_no}: rating {parts[1]!r} is not a number"
            ) from None
        idx = lookup.get(parts[0])
        if idx is None:
            unknown.append(parts[0])
            continue
        cols.append(idx)
        vals.append(rating)
    if unknown:
        print(f"note: ignoring {len(unknown)} unknown item id(s): {', '.join(unknown[:5])}")
    if not cols:
        raise UsageError(f"{path}: no ratings of known items")
    row = sp.csr_matrix(
        (np.asarray(vals, np.float32), (np.zeros(len(cols), np.int32), np.asarray(cols))),
        shape=(1, n_items),
    )
    row.sum_duplicates()
    return row


def _cmd_recommend(args: argparse.Namespace) -> int:
    import rbmrec
    from rbmrec.errors import ModelFileError

    model_path = Path(args.model)
    model = rbmrec.load(model_path)
    ids_path, seen_path = _sidecars(model_path)
    if not ids_path.is_file():
        raise ModelFileError(
            f"{ids_path} is missing: models for `rbmrec recommend` are written by `rbmrec fit`"
        )
    doc = json.loads(ids_path.read_text())
    user_ids, item_ids, titles = doc["user_ids"], doc["item_ids"], doc.get("titles")
    seen = sp.load_npz(seen_path).tocsr() if seen_path.is_file() else None
    n_items = len(item_ids)
    user = _index_of(user_ids, args.user)
    recalc = False
    if args.ratings:
        # RatingRBM: "user" folds in directly, "both" through its user-based member; an
        # item-based RBM has no hidden state for an unseen user.
        orientation = getattr(model, "orientation", "user")
        members = getattr(model, "members_", None) or {}
        if orientation == "item" or (orientation == "both" and "user" not in members):
            what = (
                "this model is item-based"
                if orientation == "item"
                else "this model has no user-based member (its training was interrupted)"
            )
            raise UsageError(
                f"fold-in (--ratings) needs a RatingRBM with a user-based part: {what}; refit "
                "with `rbmrec fit --model rating-rbm` (orientation both) or `--orientation user`"
            )
        row = _fold_in_row(Path(args.ratings), item_ids, n_items)
        userid, recalc = (user if user is not None else len(user_ids)), True
    elif user is None:
        raise UsageError(
            f"unknown user {args.user!r}: not in the training data of {model_path}; "
            "give their ratings with --ratings FILE (CSV item,rating) to fold them in"
        )
    else:
        userid = user
        row = seen[user] if seen is not None else sp.csr_matrix((1, n_items), dtype=np.float32)
    ids, scores = model.recommend(
        userid,
        row,
        N=args.n,
        filter_already_liked_items=args.exclude_seen,
        recalculate_user=recalc,
    )
    recs = []
    for i, s in zip(np.asarray(ids).tolist(), np.asarray(scores).tolist(), strict=True):
        if i < 0:
            continue
        recs.append(
            {
                "item_id": item_ids[i],
                "title": titles[i] if titles else None,
                "score": float(s),
            }
        )
    if args.json:
        print(json.dumps({"user": args.user, "recommendations": recs}, indent=2))
        return EXIT_OK
    print(f"top {len(recs)} for user {args.user}" + (" (folded in)" if recalc else "") + ":")
    for rank, rec in enumerate(recs, 1):
        label = rec["title"] or f"item {rec['item_id']}"
        extra = f" [{rec['item_id']}]" if rec["title"] else ""
        print(f"{rank:3d}. {label}{extra}  {rec['score']:.4f}")
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    keys = _parse_models(args.models)
    data = _load_data(args)
    print(f"data: {data!r}")
    df, _, _ = _run_comparison(data, keys, args)
    print()
    print(_table(df), end="")
    meta = {
        "command": " ".join(["rbmrec", *sys.argv[1:]]),
        "data": data.name,
        "seed": args.seed,
        "test_fraction": args.test_fraction,
        "validation_fraction": args.validation_fraction,
    }
    _write_outputs(df, args, meta)
    return EXIT_OK


def _cmd_datasets(args: argparse.Namespace) -> int:
    from rbmrec import datasets

    action = args.action
    if action == "list":
        for name in datasets.list_datasets():
            if name == datasets.DEMO:
                print(f"{name:16s} embedded synthetic data (rbmrec.data.demo_ratings)")
                continue
            entry = datasets.info(name)
            path = datasets.locate(name)
            status = f"available at {path}" if path else f"not downloaded (~{entry.size_mb:g} MB)"
            print(f"{name:16s} {entry.n_ratings:>11,} ratings  {status}")
        return EXIT_OK
    if not args.name:
        raise UsageError(f"datasets {action} needs a data set name, e.g. ml-100k")
    name = args.name.lower()
    if action == "download":
        if name in _SYNTHETIC_WORDS:
            print(f"{name} is embedded; nothing to download")
            return EXIT_OK
        path = datasets.download(name, progress=True)
        print(f"{name} is at {path}")
        return EXIT_OK
    if name in _SYNTHETIC_WORDS:
        data = _demo_ratings()
    else:
        datasets.info(name)  # unknown names fail here, before any download
        data = datasets.load(name, download=False)
    print(data.describe())
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        metavar="PATH",
        help="MovieLens folder/zip, CSV/TSV/parquet of ratings, or 'demo' (synthetic)",
    )
    g.add_argument("--dataset", metavar="NAME", help="named data set: demo, ml-100k, ml-1m, ...")
    g.add_argument("--user-col", default="user_id", help="user column of a table (user_id)")
    g.add_argument("--item-col", default="item_id", help="item column of a table (item_id)")
    g.add_argument("--rating-col", default="rating", help="rating column of a table (rating)")


def _add_hyper_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("RBM hyperparameters (defaults: the model's)")
    g.add_argument("--n-hidden", type=_positive_int, help="hidden units")
    g.add_argument("--epochs", type=_positive_int, help="training epochs")
    g.add_argument("--learning-rate", type=_positive_float, help="learning rate")
    g.add_argument("--batch-size", type=_positive_int, help="rows per mini-batch")
    g.add_argument("--seed", type=int, default=0, help="random seed (0)")
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="numba threads for the RBMs (0: numba's default; demo default 1, which is "
        "fastest for small data and on busy machines)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_eval_args(p: argparse.ArgumentParser, models: str) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument(
        "--models", default=models, help=f"comma-separated: {','.join(_MODEL_KEYS)} ({models})"
    )
    g.add_argument("--test-fraction", type=_fraction, default=0.1, help="held out (0.1)")
    g.add_argument(
        "--validation-fraction",
        type=_fraction,
        default=0.1,
        help="of train, for early stopping (0.1)",
    )
    g.add_argument("-k", "--k", type=_positive_int, default=10, help="list length K (10)")
    g.add_argument(
        "--relevance-threshold",
        type=float,
        default=4.0,
        help="held-out ratings >= this are relevant (4)",
    )
    g.add_argument("--out", metavar="FILE", help="write the table (.csv, .json or .md)")
    g.add_argument("--plot", metavar="PNG", help="write a bar chart of the metrics")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rbmrec`` command."""
    from rbmrec import __version__

    parser = argparse.ArgumentParser(
        prog="rbmrec",
        description="Collaborative filtering with restricted Boltzmann machines.",
    )
    parser.add_argument("--version", action="version", version=f"rbmrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="fit RBMs and baselines on demo data, compare, recommend",
        description="Fit RatingRBM, ImplicitRBM, the bias baseline and ALS on one split of "
        "the embedded synthetic data (or ML-100K when RBMREC_DATA_DIR has it), print the "
        "comparison and top-10 recommendations for a sample user.",
    )
    _add_data_args(p)
    _add_hyper_args(p)
    _add_eval_args(p, "rbm,irbm,bias,als")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("fit", help="fit a model and save it")
    _add_data_args(p)
    p.add_argument(
        "--model",
        default="rating-rbm",
        choices=("rating-rbm", "implicit-rbm", "rbm", "irbm"),
        help="model to fit (rating-rbm)",
    )
    _add_hyper_args(p)
    p.add_argument(
        "--orientation",
        choices=("both", "user", "item"),
        help="rating-rbm: 'both' (the model's default) mixes an item-based and a user-based "
        "RBM; 'user' is one RBM per user, 'item' one per item (no fold-in of new users)",
    )
    p.add_argument(
        "--validation-fraction",
        type=_fraction,
        default=0.0,
        help="hold out this fraction for early stopping (0: fit on everything)",
    )
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="where to save the model")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("recommend", help="top-N items for a user of a saved model")
    p.add_argument("--model", required=True, metavar="MODEL.npz", help="written by rbmrec fit")
    p.add_argument("--user", required=True, metavar="RAW_ID", help="user id as in the data")
    p.add_argument("-n", type=_positive_int, default=10, help="how many items (10)")
    seen = p.add_mutually_exclusive_group()
    seen.add_argument(
        "--exclude-seen",
        dest="exclude_seen",
        action="store_true",
        default=True,
        help="skip items the user rated (default)",
    )
    seen.add_argument("--include-seen", dest="exclude_seen", action="store_false")
    p.add_argument(
        "--ratings", metavar="CSV", help="fold in a user from 'item,rating' lines (new users)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_recommend)

    for name, models, help_text in (
        ("evaluate", "rbm,irbm,bias,als", "compare models on one random split"),
        ("benchmark", ",".join(_MODEL_KEYS), "compare models (default: all) on a data set"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_data_args(p)
        _add_hyper_args(p)
        _add_eval_args(p, models)
        p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("datasets", help="list, download or describe data sets")
    p.add_argument("action", choices=("list", "download", "describe"))
    p.add_argument("name", nargs="?", help="data set name (download, describe)")
    p.set_defaults(func=_cmd_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rbmrec`` command; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 success, 2 usage or data error, 1 unexpected error.
    """
    from rbmrec.errors import RBMRecError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (UsageError, RBMRecError, ValueError, FileNotFoundError) as exc:
        _err(str(exc).strip("'\"") or type(exc).__name__)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception:
        traceback.print_exc()
        _err("unexpected failure (see the traceback above); please report it")
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
