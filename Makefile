# The README's two commands: `make demo` and `make test`. Each creates .venv when missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export ORT_DISABLE_TELEMETRY := 1
export PREFECT_HOME := $(CURDIR)/.prefect
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[data,ops,dev]"
	touch $(STAMP)

setup: $(STAMP)

# The embedded default (rendered `objects`, classification) through `dvc repro`, tracked in mlflow.db.
demo: setup
	cgankd repro
	dvc metrics show
	@cat artifacts/report.md

lint: setup
	ruff check .

test: setup lint
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/render_speed.py
	$(PY) bench/compare.py --task classification
	$(PY) bench/compare.py --task regression --methods nokd

clean:
	rm -rf artifacts mlflow.db mlruns mlartifacts .prefect
