"""The notebooks under ``notebooks/``: they execute on small data, and what is stored is clean.

The stored notebooks keep the outputs of a full run (so readers on GitHub see the plots);
the test re-executes an output-free copy with ``RBMREC_NOTEBOOK_SMALL=1`` and no real data,
so a notebook that no longer runs, or whose ``assert`` cells fail, fails here.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Stored outputs are plots and short printouts; anything bigger is probably data.
MAX_TEXT_CHARS = 6_000
MAX_NOTEBOOK_BYTES = 1_500_000


@pytest.fixture
def kernel_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that runs this interpreter, whatever kernels the machine has."""
    spec = tmp_path / "kernels" / "rbmrec-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "rbmrec test",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("RBMREC_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # No real data and an empty cache: the notebooks must fall back to synthetic data.
    monkeypatch.delenv("RBMREC_DATA_DIR", raising=False)
    monkeypatch.setenv("RBMREC_CACHE_DIR", str(tmp_path / "cache"))
    return "rbmrec-test"


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_here: str, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)  # an in-memory copy: the file is never rewritten
    for cell in _code_cells(nb):
        cell.outputs = []
        cell.execution_count = None
    client = nbclient.NotebookClient(
        nb,
        kernel_name=kernel_here,
        timeout=240,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [
        out
        for cell in _code_cells(nb)
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    assert all(cell.execution_count is not None for cell in _code_cells(nb))


def test_notebooks_are_numbered_in_order() -> None:
    numbers = [re.match(r"(\d\d)_\w+\.ipynb$", p.name) for p in NOTEBOOKS]
    assert all(numbers), [p.name for p in NOTEBOOKS]
    assert [int(m.group(1)) for m in numbers] == list(range(1, len(NOTEBOOKS) + 1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_stored_outputs_are_a_clean_full_run(path: Path) -> None:
    """Either no outputs at all, or one complete run in order, without errors or data dumps."""
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name} is too large"
    nb = nbformat.read(path, as_version=4)
    cells = _code_cells(nb)
    counts = [c.execution_count for c in cells]
    if all(n is None for n in counts):
        assert not any(c.get("outputs") for c in cells), path.name
        return
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: re-run it top to bottom"
    for cell in cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", path.name
            text = out.get("text", "") + "".join(
                v for k, v in out.get("data", {}).items() if k.startswith("text/")
            )
            assert len(text) <= MAX_TEXT_CHARS, f"{path.name}: an output of {len(text)} chars"


def test_readme_lists_every_notebook() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in NOTEBOOKS if f"notebooks/{p.name}" not in readme]
    assert not missing
