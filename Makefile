# fluxwatch: `make demo` runs the product against a simulated fleet, `make test` runs every check.
# Both work from a fresh clone with nothing but Python >= 3.11 and make installed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench tools clean venv chart-assets dashboard-pictures

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fluxwatch demo

# Real Prometheus tools for the alert-rule, exposition and end-to-end tests.
tools:
	@bash scripts/ensure-tools.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) tools lint
	$(BIN)/python -m pytest

# The Helm chart's generated dashboards and alert rules; a test fails when they are stale.
chart-assets: $(STAMP)
	bash scripts/chart-assets.sh

# docs/dashboards/*.png: each dashboard's layout, drawn from the generated JSON (matplotlib).
dashboard-pictures: $(STAMP)
	$(BIN)/python scripts/dashboard_pictures.py docs/dashboards

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
