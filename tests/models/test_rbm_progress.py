"""Progress of training (and of data set downloads): a tqdm bar on a terminal only; off a
terminal, one INFO log line per epoch and no carriage-return frames in the output."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

import rbmrec
from rbmrec import _progress
from rbmrec.data import datasets
from rbmrec.models.trainer import TrainerConfig, train

TRAINER_LOG = "rbmrec.models.trainer"


class _Stderr(io.StringIO):
    """A stand-in for sys.stderr that is, or is not, a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _fake_stderr(monkeypatch, tty: bool) -> _Stderr:
    """Replace sys.stderr for the rest of the test (in its body: pytest's output capture
    sets its own sys.stderr again between a fixture's setup and the test)."""
    fake = _Stderr(tty)
    monkeypatch.setattr("sys.stderr", fake)
    return fake


tty = pytest.mark.parametrize("tty", [True, False], ids=["terminal", "redirected"])


def _step(rows, k, rng):
    return {"W": np.ones(2)}, {"recon_error": 0.5 * len(rows)}


def _epoch_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == TRAINER_LOG and r.levelno == logging.INFO
    ]


@tty
def test_show_bar_needs_progress_and_a_terminal(monkeypatch, tty):
    stderr = _fake_stderr(monkeypatch, tty)
    assert _progress.stderr_is_terminal() is stderr.tty
    assert _progress.show_bar(True) is stderr.tty
    assert _progress.show_bar(False) is False


@pytest.mark.parametrize("stream", [object(), io.StringIO()], ids=["no isatty", "closed"])
def test_a_stream_without_a_usable_isatty_is_no_terminal(monkeypatch, stream):
    if isinstance(stream, io.StringIO):
        stream.close()  # isatty() then raises ValueError
    monkeypatch.setattr("sys.stderr", stream)
    assert not _progress.stderr_is_terminal()


@tty
def test_trainer_draws_a_bar_only_on_a_terminal_and_logs_each_epoch_once(monkeypatch, caplog, tty):
    stderr = _fake_stderr(monkeypatch, tty)
    caplog.set_level(logging.INFO, logger=TRAINER_LOG)
    cfg = TrainerConfig(n_epochs=3, batch_size=2, progress=True)
    train({"W": np.zeros(2)}, _step, 4, cfg, np.random.default_rng(0))
    out = stderr.getvalue()
    if stderr.tty:
        assert "epochs" in out and "\r" in out  # tqdm's frames
    else:
        assert out == ""
    lines = _epoch_lines(caplog)
    assert len(lines) == 3  # one per epoch, on a terminal or not
    for e, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {e}/3: ") and "recon_error=0.5" in line


def test_no_bar_without_progress_even_on_a_terminal(monkeypatch, caplog):
    fake = _fake_stderr(monkeypatch, True)
    caplog.set_level(logging.INFO, logger=TRAINER_LOG)
    train({"W": np.zeros(2)}, _step, 4, TrainerConfig(n_epochs=2), np.random.default_rng(0))
    assert fake.getvalue() == "" and len(_epoch_lines(caplog)) == 2


def test_rbm_progress_off_a_terminal_is_one_log_line_per_epoch(monkeypatch, caplog):
    fake = _fake_stderr(monkeypatch, False)
    caplog.set_level(logging.INFO, logger=TRAINER_LOG)
    X = (np.random.default_rng(0).random((20, 4)) < 0.5).astype(np.float32)
    rbmrec.RBM(n_hidden=2, n_epochs=4, progress=True, random_state=0).fit(X)
    lines = _epoch_lines(caplog)
    assert fake.getvalue() == ""
    assert [line.split(":")[0] for line in lines] == [f"epoch {e}/4" for e in range(1, 5)]
    assert all("free_energy=" in line for line in lines)


@tty
def test_download_bar_follows_the_same_rule(monkeypatch, tmp_path, tty):
    stderr = _fake_stderr(monkeypatch, tty)
    src = tmp_path / "release.zip"
    src.write_bytes(b"x" * 5000)
    target = tmp_path / "cache"
    target.mkdir()
    part, md5 = datasets._fetch(src.as_uri(), target, "release", progress=True)
    assert part.read_bytes() == src.read_bytes() and len(md5) == 32
    out = stderr.getvalue()
    assert ("downloading release" in out) is stderr.tty
    if not stderr.tty:
        assert out == ""


def test_a_jupyter_kernel_shows_bars_off_a_terminal(monkeypatch):
    import sys
    import types

    class ZMQInteractiveShell:  # the class name IPython's kernel shell has
        pass

    class TerminalInteractiveShell:
        pass

    _fake_stderr(monkeypatch, False)
    fake = types.ModuleType("IPython")
    monkeypatch.setitem(sys.modules, "IPython", fake)
    fake.get_ipython = lambda: None
    assert not _progress.show_bar(True)
    fake.get_ipython = ZMQInteractiveShell
    assert _progress.show_bar(True)
    assert not _progress.show_bar(False)
    fake.get_ipython = TerminalInteractiveShell
    assert not _progress.show_bar(True)
