"""Pieces every ``rbmrec`` sub-command shares: exit codes, the usage error, the Ctrl-C watch,
messages on stderr, the first-compile note and the checks of output paths."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: ``--data``/``--dataset`` values that mean the embedded synthetic data.
SYNTHETIC_WORDS = ("demo", "synthetic")

#: Each RBM's main training kernel: when its Numba cache index is missing, this process
#: compiles the kernels (once per installation and source version).
_KEY_KERNELS = {
    "rating-rbm": ("rbmrec.engine.softmax_batches", "softmax_train_batches"),
    "implicit-rbm": ("rbmrec.engine.sparse_binary", "csr_hidden_probs"),
    "rating-rbm-choice": ("rbmrec.engine.softmax_batches", "softmax_train_batches"),
}


class UsageError(Exception):
    """A problem with the command's arguments or inputs; exit code 2."""


class Interrupted(KeyboardInterrupt):
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


CTRL_C = _CtrlCWatch()


def uncompiled(keys: Sequence[str]) -> list[str]:
    """Names of the models among ``keys`` whose kernels are not in Numba's on-disk cache.

    Looks for the cache index file of each model's main training kernel (where
    ``NUMBA_CACHE_DIR`` or the package's ``__pycache__`` puts it). A model whose kernel
    cannot be checked (Numba's internals moved) is left out: the note is a courtesy.
    """
    from rbmrec.evaluation import registry

    names = []
    for key in keys:
        spec = registry.get(key)
        if spec.name not in _KEY_KERNELS:
            continue
        module, kernel = _KEY_KERNELS[spec.name]
        try:
            dispatcher = getattr(importlib.import_module(module), kernel)
            index = dispatcher._cache._cache_file._index_path
        except (ImportError, AttributeError):
            continue
        if not os.path.exists(index):
            names.append(spec.label)
    return names


def compile_note(keys: Sequence[str]) -> None:
    """Tell the user, on stderr, that the first fit pauses to compile the kernels."""
    names = uncompiled(keys)
    if names:
        print(
            f"note: first run of {' and '.join(names)} here: compiling the Numba kernels "
            "(up to a minute, once); later runs load them from the cache",
            file=sys.stderr,
            flush=True,
        )


def err(message: str) -> None:
    print(f"rbmrec: error: {message}", file=sys.stderr)


def interrupted(message: str) -> None:
    print(f"rbmrec: interrupted by Ctrl-C: {message}", file=sys.stderr, flush=True)



RESULT_SUFFIXES = (".csv", ".json", ".md")


def plot_suffixes() -> tuple[str, ...]:
    from matplotlib.backend_bases import FigureCanvasBase

    # pgf needs a LaTeX installation and would fail only after all the work.
    kinds = set(FigureCanvasBase.get_supported_filetypes()) - {"pgf"}
    return tuple(f".{ext}" for ext in sorted(kinds))


def model_path(out: str) -> Path:
    """Where a model named ``out`` is written (``.npz`` appended when missing)."""
    path = Path(out)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def check_output(option: str, path: Path, suffixes: Sequence[str] | None = None) -> None:
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


def check_file_name(option: str, out: str) -> None:
    """Refuse an output path ending in a separator: pathlib would drop it and write a file
    next to the folder it names."""
    if out.endswith(("/", os.sep)):
        raise UsageError(f"{option} {out!r}: ends with a path separator; give a file name")


def check_not_data(option: str, path: Path, args: argparse.Namespace) -> None:
    """Refuse an output file that is the ``--data`` file (it would be overwritten)."""
    data = getattr(args, "data", None)
    if data and Path(data).exists() and path.exists() and os.path.samefile(data, path):
        raise UsageError(f"{option} {path}: is the --data file; it would be overwritten")


def check_result_outputs(args: argparse.Namespace) -> None:
    """``--out`` and ``--plot`` of evaluate, benchmark and demo, checked before any work."""
    if args.out:
        check_file_name("--out", args.out)
        check_not_data("--out", Path(args.out), args)
        check_output("--out", Path(args.out), RESULT_SUFFIXES)
    if args.plot:
        check_file_name("--plot", args.plot)
        check_not_data("--plot", Path(args.plot), args)
        if not Path(args.plot).suffix:
            args.plot += ".png"  # what matplotlib writes for a name without a suffix
        check_output("--plot", Path(args.plot), plot_suffixes())



class _StderrLines(logging.Handler):
    """Writes each record as a line to the *current* ``sys.stderr`` (which tests replace)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # pragma: no cover - a broken stream must not stop training
            self.handleError(record)


@contextlib.contextmanager
def epoch_lines(enabled: bool) -> Iterator[None]:
    """Off a terminal, print the trainer's line per epoch on stderr inside the block.

    On a terminal the trainer draws a progress bar instead (:mod:`rbmrec._progress`); with
    ``--quiet`` (``enabled`` False) neither is shown.
    """
    from rbmrec._progress import stderr_is_terminal

    if not enabled or stderr_is_terminal():
        yield
        return
    # The level is set on the package logger, not the trainer's: the harness silences the
    # package logger while it warms up clones, and the trainer inherits that.
    logger, package = logging.getLogger("rbmrec.models.trainer"), logging.getLogger("rbmrec")
    handler, level = _StderrLines(), package.level
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logger.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        package.setLevel(level)
