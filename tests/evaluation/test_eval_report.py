"""Result files of :func:`rbmrec.evaluation.write_results`: a failed write loses nothing."""

from __future__ import annotations

import errno
from pathlib import Path

import polars as pl
import pytest

from rbmrec.evaluation import write_results


def _frame() -> pl.DataFrame:
    return pl.DataFrame({"model": ["A", "B"], "rmse": [0.9, 1.1], "ndcg": [0.2, 0.3]})


@pytest.mark.parametrize("suffix", [".csv", ".json", ".md"])
def test_failed_write_keeps_previous_results_and_leaves_no_temp(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full half-way through: the earlier file is intact and no temporary file stays."""
    target = tmp_path / f"results{suffix}"
    target.write_text("previous results\n")

    def disk_full(self_or_df, path, *args, **kwargs):
        Path(path).write_bytes(b"half-wri")  # what a full disk leaves behind
        raise OSError(errno.ENOSPC, "No space left on device")

    if suffix == ".csv":
        monkeypatch.setattr(pl.DataFrame, "write_csv", disk_full)
    else:
        real_write_text = Path.write_text

        def failing_write_text(self, data, *args, **kwargs):
            real_write_text(self, data[:8], *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Path, "write_text", failing_write_text)
    with pytest.raises(OSError, match="No space left"):
        write_results(_frame(), target, metadata={"command": "x"})
    monkeypatch.undo()
    assert target.read_text() == "previous results\n"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("suffix", [".csv", ".json", ".md"])
def test_successful_write_replaces_the_file_keeping_its_mode(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / "sub" / f"results{suffix}"
    write_results(_frame(), target)
    target.chmod(0o640)
    write_results(_frame(), target, metadata={"command": "x"})
    assert "B" in target.read_text()
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in target.parent.iterdir()] == [target.name]
