"""When rbmrec draws progress bars: only on an interactive terminal or in a Jupyter kernel.

A tqdm bar redraws itself with carriage returns; written to a file or a pipe (``make demo >
log``) it leaves thousands of frames. In a Jupyter kernel ``tqdm.auto`` draws a widget that
updates in place, so a bar is drawn there too. Code that offers ``progress=True`` asks
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


def in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter (IPython) kernel, where bars are widgets."""
    shell = sys.modules.get("IPython")
    get_ipython = getattr(shell, "get_ipython", None)
    if get_ipython is None:
        return False
    ip = get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def show_bar(progress: bool) -> bool:
    """Whether to draw a progress bar: ``progress`` was asked for, and stderr is a terminal
    or the process is a Jupyter kernel.

    Parameters
    ----------
    progress : bool
        The caller's ``progress`` setting.

    Returns
    -------
    bool
    """
    return bool(progress) and (stderr_is_terminal() or in_jupyter_kernel())
