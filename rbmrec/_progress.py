"""When rbmrec draws progress bars: only on an interactive terminal.

A tqdm bar redraws itself with carriage returns; written to a file or a pipe (``make demo >
log``) it leaves thousands of frames. Code that offers ``progress=True`` asks
:func:`show_bar` whether to draw one and, when not, reports through :mod:`logging` instead.
"""

from __future__ import annotations

import sys


def stderr_is_terminal() -> bool:
    """Whether ``sys.stderr`` (where tqdm draws) is an interactive terminal.

    Read at each call, so a redirected or replaced ``sys.stderr`` counts. False for a
    stream without ``isatty`` or a closed one.
    """
    isatty = getattr(sys.stderr, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def show_bar(progress: bool) -> bool:
    """Whether to draw a progress bar: ``progress`` was asked for and stderr is a terminal.

    Parameters
    ----------
    progress : bool
        The caller's ``progress`` setting.

    Returns
    -------
    bool
    """
    return bool(progress) and stderr_is_terminal()
