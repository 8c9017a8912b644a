# Quick start: `make demo` and `make test` each create .venv if missing and install the project.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs install clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (set PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever the project metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --user --name rbmrec-venv >/dev/null 2>&1 || true
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rbmrec demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

# The reference site (docs/ + API pages from the docstrings); any warning fails the build.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
	find rbmrec tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +  # numba caches too
