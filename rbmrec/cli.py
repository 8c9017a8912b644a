"""The ``rbmrec`` command line: demo, fit, recommend, evaluate, benchmark, datasets.

Every sub-command prints for a person reading a terminal (the library itself only logs);
notes and warnings go to stderr, so ``--json`` output stays valid JSON. Exit codes: 0
success, 2 usage or data error or an unwritable output (the message names the problem), 1
anything unexpected (with a traceback), 130 Ctrl-C (``fit`` saves the model trained so far
first; ``evaluate``/``benchmark``/``demo`` stop and write no result files).

A fitted model is written as ``<out>.npz`` (see :func:`rbmrec.load`) plus two side files
that let ``recommend`` speak in the ids of the user's files:

- ``<out>.npz.ids.json``: ``{"user_ids": [...], "item_ids": [...], "titles": [...] | null,
  "data": "...", "model": "...", "model_sha256": "...", "token": "..."}``, raw ids in
  index order, the model's class, the SHA-256 of the model file and a random token;
- ``<out>.npz.seen.npz``: the training ratings (scipy sparse, users x items), used to
  exclude already-rated items, plus the same token (an extra ``rbmrec_token`` array).

``fit`` writes the three files under temporary names in the target folder and renames them
into place only when all are written, so a failure (disk full, Ctrl-C while saving) leaves
any previous model untouched. ``recommend`` checks that the side files are readable and
match the model (a damaged or foreign side file is a :class:`~rbmrec.errors.ModelFileError`,
exit 2): shapes, model class, the model file's hash and the shared token. Side files written
before the hash and token existed are still read (with a note).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import importlib
import inspect
import io
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["main"]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

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
    "rbm": ("rbmrec.engine.softmax_batches", "softmax_train_batches"),
    "irbm": ("rbmrec.engine.sparse_binary", "csr_hidden_probs"),
}


class UsageError(Exception):
    """A problem with the command's arguments or inputs; exit code 2."""


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C during a comparison: ``done`` holds the rows of the models finished before."""

    def __init__(self, done: Any, during: str) -> None:
        super().__init__(during)
        self.done = done
        self.during = during


class _CtrlCWatch:
    """Counts Ctrl-C presses while a command runs (:meth:`watching`).

    A SIGINT that lands while Numba compiles can be swallowed by a ctypes callback inside
    LLVM ("Exception ignored on calling ctypes callback function"); Numba then fails later
    with an unrelated ``RuntimeError: no compiled object yet``. Counting the presses lets
    the command still report such a failure as Ctrl-C (exit 130), not as a crash.
    """

    def __init__(self) -> None:
        self.presses = 0

    @property
    def pressed(self) -> bool:
        return self.presses > 0

    def _handler(self, signum: int, frame: Any) -> None:
        self.presses += 1
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    @contextlib.contextmanager
    def watching(self) -> Any:
        """Count presses in the body (main thread with Python's default handler only)."""
        self.presses = 0
        install = (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
        previous = signal.signal(signal.SIGINT, self._handler) if install else None
        try:
            yield self
        finally:
            if install:
                signal.signal(signal.SIGINT, previous)

    def stop_training(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Training callback: after this epoch, raise the Ctrl-C that was swallowed earlier
        (the RBMs otherwise stop at once, on the KeyboardInterrupt itself). Raising it,
        rather than returning True, ends the whole fit as a Ctrl-C does: a model made of
        several RBMs (ImplicitRBM's members) does not go on to train the next one."""
        if self.pressed:
            raise KeyboardInterrupt
        return False

    def caused(self, exc: BaseException) -> bool:
        """Whether ``exc`` is, or followed, a Ctrl-C press."""
        return isinstance(exc, KeyboardInterrupt) or self.pressed


_CTRL_C = _CtrlCWatch()


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


def _interrupted(message: str) -> None:
    print(f"rbmrec: interrupted by Ctrl-C: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def _demo_ratings() -> Any:
    from rbmrec.data import demo_ratings

    return demo_ratings()


def _load_dataset(name: str, duplicates: str = "error") -> Any:
    """A named data set (``demo`` or a MovieLens release, downloaded once when missing)."""
    from rbmrec.data import datasets

    if name.lower() in _SYNTHETIC_WORDS:
        return _demo_ratings()
    return datasets.load(name.lower(), duplicates=duplicates)


#: Hints of the data layer that name Python arguments, and the options that set them here.
_CLI_HINTS = (
    ("column", "--user-col/--item-col/--rating-col"),
    ("duplicates=", "--duplicates last|mean"),
    ("has_header=", "--no-header"),
)


def _with_cli_hint(exc: Exception, table: bool) -> Exception:
    """``exc`` with the command-line options that fix it appended, when it names an argument.

    ``table``: the error comes from a CSV/TSV/parquet file (``--user-col`` etc. apply).
    """
    from rbmrec.errors import DataError

    text = str(exc)
    hints = [opt for word, opt in _CLI_HINTS if word in text and (table or word == "duplicates=")]
    if not hints:
        return exc
    return DataError(f"{text} (command line: {', '.join(hints)})")


def _table_columns(args: argparse.Namespace) -> tuple[str | int, str | int, str | int]:
    """The user, item and rating columns: names, or 0-based positions with ``--no-header``."""
    no_header = bool(getattr(args, "no_header", False))
    cols: list[str | int] = []
    for option, value, name, position in (
        ("--user-col", args.user_col, "user_id", 0),
        ("--item-col", args.item_col, "item_id", 1),
        ("--rating-col", args.rating_col, "rating", 2),
    ):
        if value is None:
            cols.append(position if no_header else name)
        elif not no_header:
            cols.append(value)
        elif value.strip().isdigit():
            cols.append(int(value))
        else:
            raise UsageError(
                f"{option} {value!r}: with --no-header, columns are 0-based numbers (e.g. "
                f"{option} {position})"
            )
    return cols[0], cols[1], cols[2]


def _load_table(path: Path, args: argparse.Namespace) -> Any:
    """A CSV/TSV/parquet file of ratings (titles kept when the file has a ``title`` column)."""
    import polars as pl

    from rbmrec.data import load_table
    from rbmrec.errors import DataError

    user_col, item_col, rating_col = _table_columns(args)
    no_header = bool(getattr(args, "no_header", False))
    items = None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet") and not no_header:
        try:
            if suffix == ".parquet":
                head = pl.read_parquet(path)
            else:
                # Text, as load_table reads ids (``00042`` stays a string id there).
                head = pl.read_csv(
                    path, separator="\t" if suffix == ".tsv" else ",", infer_schema=False
                )
        except Exception:  # unreadable here: load_table names the problem below
            head = None
        if head is not None and "title" in head.columns and item_col in head.columns:
            item_id = pl.col(str(item_col))
            if head[str(item_col)].dtype == pl.String:
                item_id = item_id.str.strip_chars()
            items = head.select(item_id.alias("item_id"), pl.col("title")).unique(
                "item_id", keep="first", maintain_order=True
            )
    try:
        return load_table(
            path,
            user=user_col,
            item=item_col,
            rating=rating_col,
            has_header=not no_header,
            duplicates=getattr(args, "duplicates", "error"),
            items=items,
        )
    except DataError as exc:
        hinted = _with_cli_hint(exc, table=True)
        if hinted is exc:
            raise
        raise hinted from exc


def _refuse_table_options(args: argparse.Namespace, path: Path | None) -> None:
    """Refuse the column options when the data is not a CSV/TSV/parquet file (they would be
    ignored): a named data set, the demo data, or a MovieLens folder or zip. A ``--data``
    path that does not exist is left to the loader's "no such file" error."""
    from rbmrec.data import datasets

    given = [
        option
        for option, value in (
            ("--user-col", getattr(args, "user_col", None)),
            ("--item-col", getattr(args, "item_col", None)),
            ("--rating-col", getattr(args, "rating_col", None)),
            ("--no-header", getattr(args, "no_header", False) or None),
        )
        if value is not None
    ]
    if not given:
        return
    data = getattr(args, "data", None)
    dataset = getattr(args, "dataset", None)
    if dataset:
        source = f"--dataset {dataset}"
    elif path is None:
        source = f"--data {data}" if data else "the demo data (no --data)"
    elif path.exists():
        source = f"--data {data} (a MovieLens {'zip' if path.is_file() else 'folder'})"
    elif data.lower() in datasets.list_datasets():
        source = f"--data {data} (a named data set)"
    else:
        return
    raise UsageError(
        f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} only to CSV/TSV/parquet "
        f"files given with --data, not to {source}"
    )


def _load_data(args: argparse.Namespace) -> Any:
    """The Ratings named by ``--data`` or ``--dataset`` (default: the demo data)."""
    from rbmrec.errors import DataError

    data = getattr(args, "data", None)
    dataset = getattr(args, "dataset", None)
    duplicates = getattr(args, "duplicates", "error")
    if data and dataset:
        raise UsageError("give either --data or --dataset, not both")
    path = Path(data) if data and data.lower() not in _SYNTHETIC_WORDS else None
    if path is not None and path.exists() and not path.is_dir() and path.suffix.lower() != ".zip":
        return _load_table(path, args)
    _refuse_table_options(args, path)
    try:
        if dataset:
            return _load_dataset(dataset, duplicates)
        if path is None:
            return _demo_ratings()
        if not path.exists():
            from rbmrec.data import datasets

            if data.lower() in datasets.list_datasets():
                return _load_dataset(data.lower(), duplicates)
            raise FileNotFoundError(f"--data {data}: no such file or folder")
        from rbmrec.data import load_movielens

        return load_movielens(path, duplicates=duplicates)
    except DataError as exc:
        hinted = _with_cli_hint(exc, table=False)
        if hinted is exc:
            raise
        raise hinted from exc


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

        kw: dict[str, Any] = {
            "num_threads": int(getattr(args, "threads", 0) or 0),
            # Stops training after the epoch when a Ctrl-C was swallowed (see _CtrlCWatch).
            "callbacks": [_CTRL_C.stop_training],
        }
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
        if getattr(self._model, "interrupted_", False) or _CTRL_C.pressed:
            # The RBMs catch Ctrl-C to keep the parameters so far; a comparison stops here.
            raise KeyboardInterrupt
        print(
            f"  {self._label} fitted in {time.perf_counter() - t0:.1f} s",
            file=self._stream,
            flush=True,
        )
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __repr__(self) -> str:
        return repr(self._model)


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


def _check_test_split(data: Any, split: Any, args: argparse.Namespace) -> None:
    """Refuse an empty test split; warn when no held-out rating counts as relevant.

    Without test ratings every metric would be nan; without a relevant held-out rating
    (``>= --relevance-threshold``) the ranking metrics are, while rmse/mae stay valid.
    """
    if split.train.nnz == 0:
        vf = getattr(args, "validation_fraction", 0.0)
        raise UsageError(
            f"the training split is empty: --test-fraction {args.test_fraction:g} and "
            f"--validation-fraction {vf:g} leave no training rating of {data.n_ratings:,}; "
            "use smaller fractions or more data"
        )
    if split.test.nnz == 0:
        raise UsageError(
            f"the test split is empty: --test-fraction {args.test_fraction:g} of "
            f"{data.n_ratings:,} ratings holds out none ({split.train.nnz:,} train, "
            f"{0 if split.validation is None else split.validation.nnz:,} validation); use a "
            "larger --test-fraction or more data"
        )
    relevant = np.asarray(split.test.data) >= args.relevance_threshold
    if not relevant.any():
        top = float(np.max(split.test.data))
        print(
            f"warning: no held-out rating is >= --relevance-threshold "
            f"{args.relevance_threshold:g} (highest: {top:g}): the ranking metrics (ndcg, "
            "precision, recall, hit_rate, coverage) are undefined (nan); lower the threshold",
            file=sys.stderr,
            flush=True,
        )


def _run_comparison(data: Any, keys: Sequence[str], args: argparse.Namespace) -> Any:
    """Split, fit and score the models; Ctrl-C raises :class:`_Interrupted` (finished rows)."""
    import polars as pl

    from rbmrec.evaluation import evaluate

    split = _split(data, args)
    print(
        f"split: {split.train.nnz:,} train, "
        f"{0 if split.validation is None else split.validation.nnz:,} validation, "
        f"{split.test.nnz:,} test ratings",
        flush=True,
    )
    _check_test_split(data, split, args)
    models = {
        _MODEL_NAMES[k]: _Announced(_MODEL_NAMES[k], _make_model(k, args, not args.quiet))
        for k in keys
    }
    _compile_note(keys)
    # One model at a time, so Ctrl-C stops the comparison with the finished rows in hand.
    frames: list[Any] = []
    for name, model in models.items():
        try:
            with warnings.catch_warnings():
                # _check_test_split has said so in the command's own terms.
                warnings.filterwarnings("ignore", "no rating of split.test is >=", UserWarning)
                frames.append(
                    evaluate(
                        {name: model}, split, K=args.k, relevance_threshold=args.relevance_threshold
                    )
                )
        except (KeyboardInterrupt, Exception) as exc:
            if not _CTRL_C.caused(exc):
                raise
            raise _Interrupted(pl.concat(frames) if frames else None, name) from None
    return pl.concat(frames), split, models


#: What ``--out`` of evaluate, benchmark and demo can write.
_RESULT_SUFFIXES = (".csv", ".json", ".md")


def _plot_suffixes() -> tuple[str, ...]:
    from matplotlib.backend_bases import FigureCanvasBase

    # pgf needs a LaTeX installation and would fail only after all the work.
    kinds = set(FigureCanvasBase.get_supported_filetypes()) - {"pgf"}
    return tuple(f".{ext}" for ext in sorted(kinds))


def _check_output(option: str, path: Path, suffixes: Sequence[str] | None = None) -> None:
    """Refuse, before any work, an output path that cannot be written.

    The suffix must be one of ``suffixes``; the path must not be a directory; the nearest
    existing ancestor must be a writable directory (missing folders are created when the
    file is written), and when the parent exists a file must be creatable in it.
    """
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UsageError(
            f"{option} {path}: unsupported file type {path.suffix or '(no suffix)'!r}; use "
            f"{', '.join(suffixes)}"
        )
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: no permission to write in {ancestor}")
    if ancestor == path.parent:
        try:
            with tempfile.NamedTemporaryFile(dir=ancestor, prefix=".rbmrec-probe-"):
                pass
        except OSError as exc:
            raise UsageError(
                f"{option} {path}: cannot create files in {ancestor}: {exc.strerror or exc}"
            ) from None


def _check_file_name(option: str, out: str) -> None:
    """Refuse an output path ending in a separator: pathlib would drop it and write a file
    next to the folder it names."""
    if out.endswith(("/", os.sep)):
        raise UsageError(f"{option} {out!r}: ends with a path separator; give a file name")


def _check_not_data(option: str, path: Path, args: argparse.Namespace) -> None:
    """Refuse an output file that is the ``--data`` file (it would be overwritten)."""
    data = getattr(args, "data", None)
    if data and Path(data).exists() and path.exists() and os.path.samefile(data, path):
        raise UsageError(f"{option} {path}: is the --data file; it would be overwritten")


def _check_result_outputs(args: argparse.Namespace) -> None:
    """``--out`` and ``--plot`` of evaluate, benchmark and demo, checked before any work."""
    if args.out:
        _check_file_name("--out", args.out)
        _check_not_data("--out", Path(args.out), args)
        _check_output("--out", Path(args.out), _RESULT_SUFFIXES)
    if args.plot:
        _check_file_name("--plot", args.plot)
        _check_not_data("--plot", Path(args.plot), args)
        if not Path(args.plot).suffix:
            args.plot += ".png"  # what matplotlib writes for a name without a suffix
        _check_output("--plot", Path(args.plot), _plot_suffixes())


def _write_outputs(df: Any, args: argparse.Namespace, meta: dict[str, Any]) -> None:
    from rbmrec.evaluation import write_results

    if args.out:
        try:
            path = write_results(df, args.out, metadata=meta)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: cannot write: {exc.strerror or exc}") from None
        print(f"results written to {path}")
    if args.plot:
        try:
            path = _plot(df, Path(args.plot), title=meta.get("data", ""))
        except OSError as exc:
            raise UsageError(f"--plot {args.plot}: cannot write: {exc.strerror or exc}") from None
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
    from rbmrec.models.persistence import write_atomically

    try:
        # A temporary file renamed into place: a failed write keeps any previous plot.
        fmt = path.suffix[1:].lower() or "png"
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format=fmt))
    finally:
        plt.close(fig)
    return path


def _report_partial(stop: _Interrupted, keys: Sequence[str], args: argparse.Namespace) -> int:
    """Ctrl-C during a comparison: print the finished models' rows, name the others, write
    no result file (it must not pass off an incomplete comparison as done); exit 130."""
    if stop.done is not None:
        print()
        print(f"## Partial results (interrupted during {stop.during})")
        print()
        print(_table(stop.done), end="")
    unfinished = keys[0 if stop.done is None else stop.done.height :]
    _interrupted(
        f"stopped during {stop.during}; not finished: "
        f"{', '.join(_MODEL_NAMES[k] for k in unfinished)}"
        + ("; no result files written" if args.out or args.plot else "")
    )
    return EXIT_INTERRUPTED


def _cmd_demo(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    if args.dataset is None and args.data is None:
        from rbmrec.data import datasets

        if datasets.locate("ml-100k") is not None:
            args.dataset = "ml-100k"
    keys = _parse_models(args.models)
    _check_result_outputs(args)
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
    try:
        df, split, models = _run_comparison(data, keys, args)
    except _Interrupted as stop:
        return _report_partial(stop, keys, args)
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


def _model_path(out: str) -> Path:
    """Where :func:`rbmrec.models.persistence.save` puts ``--out`` (``.npz`` appended)."""
    path = Path(out)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _temp_name(final: Path, suffix: str) -> Path:
    """A fresh hidden name next to ``final`` (not created), ending in ``suffix``."""
    return final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp{suffix}")


def _save_fitted(model: Any, final: Path, doc: dict[str, Any], seen: sp.csr_matrix) -> None:
    """Write the model and its side files all or nothing.

    Each file goes to a temporary name in the target folder; only when all three are
    complete are they renamed into place (side files first, the model last). Any failure,
    including Ctrl-C, removes the temporary files and leaves earlier files untouched.
    """
    from rbmrec.models.persistence import file_mode

    ids_path, seen_path = _sidecars(final)
    temps: list[Path] = []
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp_model = _temp_name(final, ".npz")
        temps.append(tmp_model)
        model.save(tmp_model)
        # Ties the three files together: the side files name the model file's bytes (its
        # SHA-256) and share one random token, so recommend spots a foreign side file even
        # when its shape matches.
        token = secrets.token_hex(16)
        doc = {**doc, "model_sha256": _file_sha256(tmp_model), "token": token}
        tmp_ids = _temp_name(ids_path, "")
        temps.append(tmp_ids)
        with open(tmp_ids, "x", encoding="utf-8") as fh:
            fh.write(json.dumps(doc) + "\n")
        tmp_seen = _temp_name(seen_path, ".npz")
        temps.append(tmp_seen)
        sp.save_npz(tmp_seen, seen)
        _add_seen_token(tmp_seen, token)
        renames = ((tmp_ids, ids_path), (tmp_seen, seen_path), (tmp_model, final))
        for tmp, dest in renames:
            # A replaced file keeps its permissions, as in persistence.save.
            with contextlib.suppress(OSError):
                os.chmod(tmp, file_mode(dest))
        for tmp, dest in renames:
            os.replace(tmp, dest)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        raise


#: Name of the token array that ``fit`` adds to ``<model>.seen.npz`` (scipy ignores it).
_SEEN_TOKEN = "rbmrec_token"


def _file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _add_seen_token(seen_path: Path, token: str) -> None:
    """Add ``token`` to the zip archive :func:`scipy.sparse.save_npz` wrote, as an array
    :func:`numpy.load` reads and :func:`scipy.sparse.load_npz` ignores."""
    buf = io.BytesIO()
    np.save(buf, np.array(token), allow_pickle=False)
    with zipfile.ZipFile(seen_path, "a") as zf:
        zf.writestr(f"{_SEEN_TOKEN}.npy", buf.getvalue())


def _check_model_output(out: str, args: argparse.Namespace) -> Path:
    """The model path of ``fit --out``, refused before loading data when it is unusable."""
    if not Path(out).name:
        raise UsageError(f"--out {out!r}: give a file name for the model, e.g. model.npz")
    _check_file_name("--out", out)
    final = _model_path(out)
    _check_not_data("--out", final, args)
    _check_output("--out", final)
    for side in _sidecars(final):
        if side.is_dir():
            raise UsageError(f"--out {out}: side file {side} is a directory")
    return final


def _cmd_fit(args: argparse.Namespace) -> int:
    key = _parse_models(args.model)[0]
    if key not in ("rbm", "irbm"):
        raise UsageError(f"--model must be rating-rbm or implicit-rbm, got {args.model!r}")
    if args.orientation is not None and key != "rbm":
        raise UsageError(
            f"--orientation applies only to --model rating-rbm, not to {args.model} (the "
            "implicit RBM has one orientation: one visible unit per item)"
        )
    final = _check_model_output(args.out, args)
    data = _load_data(args)
    print(f"data: {data!r}")
    if key == "rbm":
        _warn_levels(data.user_items)
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
    interrupted = bool(getattr(model, "interrupted_", False)) or _CTRL_C.pressed
    doc = {
        "model": _MODEL_NAMES[key],
        "data": data.name,
        "user_ids": _jsonable_ids(data.user_ids),
        "item_ids": _jsonable_ids(data.item_ids),
        "titles": _titles(data),
    }
    try:
        _save_fitted(model, final, doc, sp.csr_matrix(data.user_items))
    except OSError as exc:
        raise UsageError(
            f"cannot write the model to {final}: {exc.strerror or exc} (any previous model "
            "there is unchanged)"
        ) from None
    ids_path, seen_path = _sidecars(final)
    note = _stopped_note(model)
    print(f"fitted {_MODEL_NAMES[key]} in {seconds:.1f} s{note}")
    print(f"model written to {final} (+ {ids_path.name}, {seen_path.name})")
    if interrupted:
        _interrupted("training stopped early; the model trained so far was saved")
        return EXIT_INTERRUPTED
    return EXIT_OK


#: ``fit`` warns about a rating value used by fewer than this share of the ratings.
_RARE_LEVEL = 1e-4
#: ... or farther than this many times the typical spacing from every other value.
_FAR_LEVEL = 1.5


def _suspicious_levels(values: np.ndarray) -> list[tuple[float, int, str]]:
    """Rating values that look like typos: ``(value, count, why)`` for each.

    A value is suspicious when fewer than 0.01% of the ratings use it, or when its distance to
    the nearest other value is more than 1.5 times the median of those distances (e.g. 100
    among 1..5, or -1 among 1..5). Needs three distinct values or more.
    """
    levels, counts = np.unique(values, return_counts=True)
    if len(levels) < 3:
        return []
    gaps = np.diff(levels)
    nearest = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    far = nearest > _FAR_LEVEL * np.median(nearest)
    rare = counts < _RARE_LEVEL * counts.sum()
    out = []
    for k in np.flatnonzero(far | rare):
        why = "far from the other values" if far[k] else "used by under 0.01% of the ratings"
        out.append((float(levels[k]), int(counts[k]), why))
    return out


def _warn_levels(user_items: Any) -> None:
    """Warn on stderr when a rating value looks like a typo (it would become a level)."""
    values = np.asarray(sp.csr_matrix(user_items).data)
    odd = _suspicious_levels(values)
    if not odd:
        return
    levels = ", ".join(f"{v:g}" for v in np.unique(values))
    what = "; ".join(f"{v:g} ({n} rating{'s' if n != 1 else ''}, {why})" for v, n, why in odd)
    print(
        f"warning: suspicious rating value(s): {what}. Every distinct value becomes a rating "
        f"level of the RatingRBM (levels: {levels}); check the data for typos",
        file=sys.stderr,
        flush=True,
    )


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


def _read_ratings_text(path: Path) -> tuple[str, str]:
    """The text of a ``--ratings`` file (``-``: standard input) and its name for messages.

    Read as UTF-8; a byte order mark (as Excel and Notepad write) is dropped.
    """
    if str(path) == "-":
        name, raw = "<stdin>", sys.stdin.buffer.read()
    else:
        if not path.is_file():
            raise FileNotFoundError(f"--ratings {path}: no such file")
        name, raw = str(path), path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), name
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"--ratings {name}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset "
            f"{exc.start}); save the file as UTF-8"
        ) from None


def _split_rating_line(line: str) -> list[str]:
    """The fields of one ``item,rating`` line: comma-separated (tab-separated when it has
    no comma field), CSV quoting honoured, fields stripped."""
    fields = next(csv.reader([line], skipinitialspace=True))
    if len(fields) < 2 and "\t" in line:
        fields = next(csv.reader([line], delimiter="\t", skipinitialspace=True))
    return [f.strip() for f in fields]


def _fold_in_row(
    path: Path, item_ids: list[Any], n_items: int, levels: np.ndarray | None = None
) -> sp.csr_matrix:
    """A 1 x n_items CSR from a CSV of ``item,rating`` lines (``path`` ``-``: stdin).

    The file is UTF-8 (an initial byte order mark is ignored); fields are separated by
    commas or tabs and may be quoted as in CSV. Blank lines and ``#`` comment lines are
    skipped anywhere; the first other line may be a header (its rating field is not a
    number and its item field not a known item). Unknown items are reported on stderr and
    skipped. Errors naming the file and line: a rating that is not a finite non-zero number
    or (``levels`` given, a RatingRBM) not one of the model's rating levels, and an item
    given more than once.
    """
    text, name = _read_ratings_text(path)
    lookup = {str(v): i for i, v in enumerate(item_ids)}
    ratings: dict[int, float] = {}
    lines: dict[int, list[int]] = {}
    unknown: list[str] = []
    first = True
    for line_no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parts = _split_rating_line(line)
        except csv.Error as exc:
            raise UsageError(f"{name}, line {line_no}: {exc}: {line!r}") from None
        if len(parts) < 2:
            raise UsageError(f"{name}, line {line_no}: expected 'item,rating', got {line!r}")
        header, first = first, False
        try:
            rating = float(parts[1])
        except ValueError:
            if header and parts[0] not in lookup:
                continue
            raise UsageError(
                f"{name}, line {line_no}: rating {parts[1]!r} is not a number"
            ) from None
        if not np.isfinite(rating):
            raise UsageError(f"{name}, line {line_no}: rating {parts[1]!r} is not a finite number")
        if rating == 0:
            raise UsageError(
                f"{name}, line {line_no}: rating 0: sparse storage cannot tell a 0 rating from "
                "a missing one"
                + (f"; use the model's levels {_levels_text(levels)}" if levels is not None else "")
            )
        if levels is not None and not _is_level(levels, rating):
            raise UsageError(
                f"{name}, line {line_no}: rating {parts[1]} is not one of the model's rating "
                f"levels {_levels_text(levels)}"
            )
        idx = lookup.get(parts[0])
        if idx is None:
            unknown.append(parts[0])
            continue
        lines.setdefault(idx, []).append(line_no)
        ratings[idx] = rating
    repeated = {i: ln for i, ln in lines.items() if len(ln) > 1}
    if repeated:
        i, ln = next(iter(repeated.items()))
        more = f" (and {len(repeated) - 1} more item(s))" if len(repeated) > 1 else ""
        raise UsageError(
            f"{name}: item {item_ids[i]} appears {len(ln)} times (lines "
            f"{', '.join(map(str, ln))}){more}; give each item once"
        )
    if unknown:
        print(
            f"note: ignoring {len(unknown)} unknown item id(s): {', '.join(unknown[:5])}",
            file=sys.stderr,
        )
    if not ratings:
        raise UsageError(f"{name}: no ratings of known items")
    cols = np.fromiter(ratings, dtype=np.int64, count=len(ratings))
    vals = np.fromiter(ratings.values(), dtype=np.float32, count=len(ratings))
    row = sp.csr_matrix((vals, (np.zeros(len(cols), np.int32), cols)), shape=(1, n_items))
    row.sort_indices()
    return row


def _is_level(levels: np.ndarray, rating: float) -> bool:
    """Whether ``rating`` maps to one of ``levels`` by the model's own rule."""
    from rbmrec.errors import DataError
    from rbmrec.models.rating import level_index

    try:
        level_index(levels, np.array([rating]))
    except DataError:
        return False
    return True


def _levels_text(levels: np.ndarray | None) -> str:
    return "" if levels is None else "(" + ", ".join(f"{v:g}" for v in levels) + ")"


def _merge_rows(stored: sp.csr_matrix, given: sp.csr_matrix) -> sp.csr_matrix:
    """``stored`` with ``given``'s entries added; ``given`` wins where both rate an item."""
    base = sp.csr_matrix(stored).tocoo()
    keep = ~np.isin(base.col, given.indices)
    cols = np.r_[base.col[keep], given.indices].astype(np.int64)
    vals = np.r_[base.data[keep], given.data].astype(np.float32)
    row = sp.csr_matrix((vals, (np.zeros(len(cols), np.int32), cols)), shape=given.shape)
    row.sort_indices()
    return row


def _model_shape(model: Any) -> tuple[int, int] | None:
    """``(n_users, n_items)`` a loaded model was fitted on, when it says."""
    if hasattr(model, "n_users_") and hasattr(model, "n_items_"):
        return int(model.n_users_), int(model.n_items_)
    stored = getattr(model, "user_items_", None)
    if stored is not None and getattr(stored, "ndim", 0) == 2:
        return int(stored.shape[0]), int(stored.shape[1])
    return None


def _read_ids(
    ids_path: Path, model_path: Path, model: Any
) -> tuple[list, list, list | None, str | None]:
    """``user_ids, item_ids, titles, token`` of ``<model>.ids.json``, checked against the model.

    The file must list as many users and items as the model was fitted on, name the model's
    class, and (files written by this version of ``fit``) give the SHA-256 of the model
    file's bytes; ``token`` (None in older files) must then be in ``<model>.seen.npz`` too.
    """
    from rbmrec.errors import ModelFileError

    if not ids_path.is_file():
        raise ModelFileError(
            f"{ids_path} is missing: models for `rbmrec recommend` are written by `rbmrec fit`"
        )
    refit = "; refit the model with `rbmrec fit`"
    try:
        doc = json.loads(ids_path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ModelFileError(f"{ids_path} is damaged (not valid JSON: {exc}){refit}") from None
    if not isinstance(doc, dict):
        raise ModelFileError(f"{ids_path} is damaged (not a JSON object){refit}")
    user_ids, item_ids, titles = doc.get("user_ids"), doc.get("item_ids"), doc.get("titles")
    for key, value in (("user_ids", user_ids), ("item_ids", item_ids)):
        if not isinstance(value, list):
            raise ModelFileError(f"{ids_path} is damaged ({key!r} missing or not a list){refit}")
    if titles is not None and (not isinstance(titles, list) or len(titles) != len(item_ids)):
        raise ModelFileError(
            f"{ids_path} is damaged ('titles' is not a list of one title per item){refit}"
        )
    shape = _model_shape(model)
    if shape is not None and shape != (len(user_ids), len(item_ids)):
        raise ModelFileError(
            f"{ids_path} lists {len(user_ids)} users and {len(item_ids)} items, but "
            f"{model_path} was fitted on {shape[0]} users and {shape[1]} items: the side file "
            f"belongs to another model{refit}"
        )
    kind = doc.get("model")
    if isinstance(kind, str) and kind != type(model).__name__:
        raise ModelFileError(
            f"{ids_path} was written for a model of class {kind}, but {model_path} is a "
            f"{type(model).__name__}: the side file belongs to another model{refit}"
        )
    digest, token = doc.get("model_sha256"), doc.get("token")
    if digest is None:
        print(
            f"note: {ids_path} was written by an older rbmrec: its match with the model "
            "cannot be fully checked; refit with `rbmrec fit` to enable the check",
            file=sys.stderr,
        )
        return user_ids, item_ids, titles, None
    if not isinstance(digest, str) or not isinstance(token, str):
        raise ModelFileError(f"{ids_path} is damaged ('model_sha256' or 'token'){refit}")
    if digest != _file_sha256(model_path):
        raise ModelFileError(
            f"{ids_path} was written for another model file than {model_path} (the model "
            f"was replaced or the side file copied from elsewhere){refit}"
        )
    return user_ids, item_ids, titles, token


def _read_seen(
    seen_path: Path, shape: tuple[int, int], excluding: bool, token: str | None = None
) -> sp.csr_matrix:
    """The training ratings of ``<model>.seen.npz``, checked to be ``shape`` and (``token``
    given) to carry the token of the model's ``ids.json``.

    ``excluding``: they are read for --exclude-seen (else only to merge a known user's
    --ratings), which the message of a missing file says.
    """
    from rbmrec.errors import ModelFileError

    refit = "; refit the model with `rbmrec fit`"
    if not seen_path.is_file():
        why = (
            "the training ratings that --exclude-seen (the default) leaves out"
            if excluding
            else "the user's training ratings, merged with --ratings for a known user"
        )
        raise ModelFileError(
            f"{seen_path} is missing: it holds {why}{refit}"
            + (", or pass --include-seen" if excluding else "")
        )
    try:
        seen = sp.load_npz(seen_path).tocsr()
        with np.load(seen_path, allow_pickle=False) as npz:
            stored = str(npz[_SEEN_TOKEN]) if _SEEN_TOKEN in npz.files else None
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{seen_path} is damaged ({exc}){refit}") from None
    if seen.shape != shape:
        raise ModelFileError(
            f"{seen_path} holds {seen.shape[0]} users x {seen.shape[1]} items, but the model "
            f"has {shape[0]} x {shape[1]}: the side file belongs to another model{refit}"
        )
    if token is not None and stored != token:
        raise ModelFileError(
            f"{seen_path} was written by another `rbmrec fit` than the model's ids.json: "
            f"the side file belongs to another model{refit}"
        )
    return seen


def _cmd_recommend(args: argparse.Namespace) -> int:
    import rbmrec

    model_path = Path(args.model)
    if not model_path.exists() and model_path.suffix != ".npz":
        # `fit --out mm` writes mm.npz: accept the name it was given.
        with_npz = _model_path(args.model)
        if with_npz.is_file():
            model_path = with_npz
    model = rbmrec.load(model_path)
    ids_path, seen_path = _sidecars(model_path)
    user_ids, item_ids, titles, token = _read_ids(ids_path, model_path, model)
    n_items = len(item_ids)
    user = _index_of(user_ids, args.user)
    # A known user's training ratings: to leave them out (--exclude-seen) and to merge
    # their --ratings with them. A new user's row comes from --ratings alone.
    seen = None
    if user is not None and (args.exclude_seen or args.ratings):
        seen = _read_seen(seen_path, (len(user_ids), n_items), bool(args.exclude_seen), token)
    recalc = False
    merged = ""
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
        levels = getattr(model, "values_", None)
        levels = np.asarray(levels, dtype=np.float64) if levels is not None else None
        if levels is not None and levels.size == 0:
            levels = None  # a gaussian RatingRBM: any finite rating
        row = _fold_in_row(Path(args.ratings), item_ids, n_items, levels)
        if user is not None and seen is not None:
            # A known user: the file adds to (and, item by item, overrides) the training
            # ratings; all of them are left out of the list unless --include-seen.
            stored = seen[user]
            replaced = int(np.isin(stored.indices, row.indices).sum())
            row = _merge_rows(stored, row)
            merged = f" (training ratings + {args.ratings}, folded in)"
            print(
                f"note: user {args.user}: {stored.nnz} training rating(s) merged with "
                f"{args.ratings} ({replaced} replaced by the file)",
                file=sys.stderr,
            )
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
        N=min(args.n, n_items),  # -n beyond the item count lists every item, no more
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
    label = merged or (" (folded in)" if recalc else "")
    print(f"top {len(recs)} for user {args.user}{label}:")
    for rank, rec in enumerate(recs, 1):
        label = rec["title"] or f"item {rec['item_id']}"
        extra = f" [{rec['item_id']}]" if rec["title"] else ""
        print(f"{rank:3d}. {label}{extra}  {rec['score']:.4f}")
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    keys = _parse_models(args.models)
    _check_result_outputs(args)
    data = _load_data(args)
    print(f"data: {data!r}")
    try:
        df, _, _ = _run_comparison(data, keys, args)
    except _Interrupted as stop:
        return _report_partial(stop, keys, args)
    print()
    print(_table(df), end="")
    meta = {
        "command": " ".join(["rbmrec", *getattr(args, "argv", sys.argv[1:])]),
        "data": data.name,
        "seed": args.seed,
        "test_fraction": args.test_fraction,
        "validation_fraction": args.validation_fraction,
    }
    _write_outputs(df, args, meta)
    return EXIT_OK


def _cmd_datasets(args: argparse.Namespace) -> int:
    from rbmrec.data import datasets

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
        datasets.info(name)  # unknown names fail here
        found = datasets.locate(name)  # $RBMREC_DATA_DIR, then the cache: no network
        if found is not None:
            print(f"{name} is already at {found}; nothing to download")
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


def _arg_type(
    convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str
) -> Callable[[str], Any]:
    """An argparse ``type``: ``convert(text)``, refused unless ``ok``, naming ``what``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _arg_type(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _arg_type(int, lambda v: v >= 0, "a non-negative integer")
_seed = _arg_type(int, lambda v: 0 <= v < 2**63, "an integer in [0, 2**63)")
_finite_float = _arg_type(float, lambda v: bool(np.isfinite(v)), "a finite number")
_positive_float = _arg_type(float, lambda v: v > 0 and np.isfinite(v), "a positive number")
_fraction = _arg_type(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
#: The test split must hold something out.
_open_fraction = _arg_type(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        metavar="PATH",
        help="MovieLens folder/zip, CSV/TSV/parquet of ratings, or 'demo' (synthetic)",
    )
    g.add_argument("--dataset", metavar="NAME", help="named data set: demo, ml-100k, ml-1m, ...")
    g.add_argument(
        "--user-col", help="user column of a table (user_id; with --no-header a number, 0)"
    )
    g.add_argument(
        "--item-col", help="item column of a table (item_id; with --no-header a number, 1)"
    )
    g.add_argument(
        "--rating-col", help="rating column of a table (rating; with --no-header a number, 2)"
    )
    g.add_argument(
        "--no-header",
        action="store_true",
        help="the CSV/TSV file has no header line: columns are given by 0-based position "
        "(default user 0, item 1, rating 2)",
    )
    g.add_argument(
        "--duplicates",
        choices=("error", "last", "mean"),
        default="error",
        help="a user rating the same item twice: refuse the data (error, the default), keep "
        "the last rating, or average them",
    )


def _add_hyper_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("RBM hyperparameters (defaults: the model's)")
    g.add_argument("--n-hidden", type=_positive_int, help="hidden units")
    g.add_argument("--epochs", type=_positive_int, help="training epochs")
    g.add_argument("--learning-rate", type=_positive_float, help="learning rate")
    g.add_argument("--batch-size", type=_positive_int, help="rows per mini-batch")
    g.add_argument("--seed", type=_seed, default=0, help="random seed (0)")
    g.add_argument(
        "--threads",
        type=_non_negative_int,
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
    g.add_argument(
        "--test-fraction", type=_open_fraction, default=0.1, help="held out, in (0, 1) (0.1)"
    )
    g.add_argument(
        "--validation-fraction",
        type=_fraction,
        default=0.1,
        help="of train, for early stopping (0.1)",
    )
    g.add_argument("-k", "--k", type=_positive_int, default=10, help="list length K (10)")
    g.add_argument(
        "--relevance-threshold",
        type=_finite_float,
        default=4.0,
        help="held-out ratings >= this are relevant (4)",
    )
    g.add_argument(
        "--out",
        metavar="FILE",
        help="write the table (.csv, .json or .md); checked before any work, not written "
        "when Ctrl-C stops the run",
    )
    g.add_argument(
        "--plot", metavar="PNG", help="write a bar chart of the metrics (.png, .pdf, .svg, ...)"
    )


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

    p = sub.add_parser(
        "fit",
        help="fit a model and save it",
        description="Fit a model and save it. Ctrl-C stops training: the model trained so far "
        "is saved and the exit code is 130. A rating value that looks like a typo (used by "
        "under 0.01% of the ratings, or far from the other values, e.g. 100 among 1..5) gets "
        "a warning on stderr: for the rating RBM every distinct value is a rating level.",
    )
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
    p.add_argument(
        "--out",
        required=True,
        metavar="MODEL.npz",
        help="where to save the model (+ MODEL.npz.ids.json, MODEL.npz.seen.npz); the three "
        "files are replaced together or not at all",
    )
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser(
        "recommend",
        help="top-N items for a user of a saved model",
        description="Top-N items for a user of a model written by `rbmrec fit` (it reads "
        "MODEL.npz.ids.json and, unless --include-seen, MODEL.npz.seen.npz).",
    )
    p.add_argument("--model", required=True, metavar="MODEL.npz", help="written by rbmrec fit")
    p.add_argument("--user", required=True, metavar="RAW_ID", help="user id as in the data")
    p.add_argument(
        "-n", type=_positive_int, default=10, help="how many items (10; at most all items)"
    )
    seen = p.add_mutually_exclusive_group()
    seen.add_argument(
        "--exclude-seen",
        dest="exclude_seen",
        action="store_true",
        default=True,
        help="skip items the user rated (default)",
    )
    seen.add_argument(
        "--include-seen",
        dest="exclude_seen",
        action="store_false",
        help="list rated items too (MODEL.npz.seen.npz is then not needed, unless --ratings "
        "is given for a user of the training data)",
    )
    p.add_argument(
        "--ratings",
        metavar="CSV",
        help="fold in the user from a UTF-8 CSV of 'item,rating' lines, '-' for stdin "
        "(optional header; comma or tab separated, CSV quoting; blank and '#' lines "
        "skipped; each item once; ratings among the model's levels). For a user of "
        "the training data the file is merged with their training ratings (the file wins "
        "where both rate an item), and all of them are excluded unless --include-seen",
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


def _message(exc: BaseException) -> str:
    """The text of ``exc`` for the user (a KeyError's str() quotes its argument: unquoted)."""
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])
    else:
        text = str(exc)
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rbmrec`` command; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 success, 2 usage or data error (including files that cannot be written), 1
        unexpected error, 130 interrupted by Ctrl-C.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the results' metadata
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    with _CTRL_C.watching():
        try:
            return func(args)
        except Exception as exc:
            if not _CTRL_C.pressed:
                return _failure(exc)
            if _failure(exc, quiet_unexpected=True) == EXIT_UNEXPECTED:
                # Ctrl-C that Numba's compiler swallowed, surfacing as another error.
                _interrupted(f"stopped ({type(exc).__name__} raised after Ctrl-C)")
            else:
                _interrupted("stopped")  # after the error above (e.g. the save failed)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            _interrupted("stopped")
            return EXIT_INTERRUPTED


def _failure(exc: Exception, quiet_unexpected: bool = False) -> int:
    """Report a command's exception on stderr; returns the exit code.

    ``quiet_unexpected``: print nothing for an unexpected exception (exit code 1).
    """
    from rbmrec.errors import RBMRecError

    if isinstance(exc, UsageError | RBMRecError | ValueError | FileNotFoundError):
        _err(_message(exc))
        return EXIT_USAGE
    if isinstance(exc, BrokenPipeError):
        return EXIT_OK
    if isinstance(exc, OSError):  # disk full, permissions...: the message names the file
        _err(_message(exc))
        return EXIT_USAGE
    if not quiet_unexpected:
        traceback.print_exception(exc)
        _err("unexpected failure (see the traceback above); please report it")
    return EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
