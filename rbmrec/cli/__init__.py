"""The ``rbmrec`` command line: demo, fit, recommend, evaluate, benchmark, datasets.

Every sub-command prints for a person reading a terminal (the library itself only logs);
notes and warnings go to stderr, so ``--json`` output stays valid JSON. Exit codes: 0
success, 2 usage or data error or an unwritable output (the message names the problem), 1
anything unexpected (with a traceback), 130 Ctrl-C (``fit`` saves the model trained so far
first; ``evaluate``/``benchmark``/``demo`` stop and write no result files).

``fit`` writes one file, a model bundle (:class:`rbmrec.bundle.ModelBundle`: the model, the
raw user and item ids, the item titles and the training ratings), atomically: a failure
(disk full, Ctrl-C while saving) leaves any previous model untouched. ``recommend`` reads it,
or the three files of rbmrec 0.1.0 (``MODEL.npz`` + ``MODEL.npz.ids.json`` +
``MODEL.npz.seen.npz``, checked against each other); a damaged or foreign file is a
:class:`~rbmrec.errors.ModelFileError` (exit 2).

One module per sub-command (:mod:`.demo`, :mod:`.fit`, :mod:`.recommend`, :mod:`.evaluate`
for ``evaluate`` and ``benchmark``, :mod:`.datasets`); :mod:`.parser` builds the arguments,
:mod:`._common`, :mod:`._data`, :mod:`._models` and :mod:`._compare` hold what they share.
Model names are those of :mod:`rbmrec.evaluation.registry`.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from rbmrec.cli import _common
from rbmrec.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    UsageError,
)

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNEXPECTED", "EXIT_USAGE", "UsageError", "main"]


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
    from rbmrec.cli.parser import build_parser

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
    with _common.CTRL_C.watching(), _common.epoch_lines(not getattr(args, "quiet", True)):
        try:
            return func(args)
        except Exception as exc:
            if not _common.CTRL_C.pressed:
                return _failure(exc)
            if _failure(exc, quiet_unexpected=True) == EXIT_UNEXPECTED:
                # Ctrl-C that Numba's compiler swallowed, surfacing as another error.
                _common.interrupted(f"stopped ({type(exc).__name__} raised after Ctrl-C)")
            else:
                _common.interrupted("stopped")  # after the error above (e.g. the save failed)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            _common.interrupted("stopped")
            return EXIT_INTERRUPTED


def _failure(exc: Exception, quiet_unexpected: bool = False) -> int:
    """Report a command's exception on stderr; returns the exit code.

    ``quiet_unexpected``: print nothing for an unexpected exception (exit code 1).
    """
    from rbmrec.errors import RBMRecError

    if isinstance(exc, UsageError | RBMRecError | ValueError | FileNotFoundError):
        _common.err(_message(exc))
        return EXIT_USAGE
    if isinstance(exc, BrokenPipeError):
        return EXIT_OK
    if isinstance(exc, OSError):  # disk full, permissions...: the message names the file
        _common.err(_message(exc))
        return EXIT_USAGE
    if not quiet_unexpected:
        traceback.print_exception(exc)
        _common.err("unexpected failure (see the traceback above); please report it")
    return EXIT_UNEXPECTED
