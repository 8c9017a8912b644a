"""Re-execute notebooks in place so their stored outputs come from one full run.

Usage (from the repository root, with real data for the MovieLens parts)::

    RBMREC_DATA_DIR=/path/to/datasets .venv/bin/python notebooks/run_notebooks.py  # all
    RBMREC_DATA_DIR=/path/to/datasets .venv/bin/python notebooks/run_notebooks.py \
        notebooks/03_*.ipynb

Each notebook runs top to bottom in a kernel on this interpreter; on success the file is
rewritten with its outputs, on failure it is left untouched and the exit status is 1.
``tests/cli/test_cli_notebooks.py`` checks that stored outputs are one complete run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

log = logging.getLogger("run_notebooks")
HERE = Path(__file__).resolve().parent


def run(path: Path, timeout: int) -> float:
    """Execute ``path`` in place; return the seconds taken (raises on a failing cell)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    start = time.perf_counter()
    nbclient.NotebookClient(
        nb,
        kernel_name="rbmrec-run",
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    seconds = time.perf_counter() - start
    # Keep the generic kernelspec readers' Jupyter can start, not this run's private one.
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (600)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = args.paths or sorted(HERE.glob("*.ipynb"))
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "kernels" / "rbmrec-run"
        spec.mkdir(parents=True)
        argv_ = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        spec.joinpath("kernel.json").write_text(
            json.dumps({"argv": argv_, "display_name": "rbmrec", "language": "python"})
        )
        # Kernelspecs are looked up in this process: point Jupyter at the private one.
        os.environ["JUPYTER_PATH"] = tmp
        for path in paths:
            try:
                log.info("%s: %.1f s", path.name, run(path, args.timeout))
            except nbclient.exceptions.CellExecutionError as exc:
                log.error("%s failed, left unchanged:\n%s", path.name, exc)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
