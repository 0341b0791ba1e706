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

.PHONY: setup demo demo-classification demo-regression test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[data,ops,dev]"
	touch $(STAMP)

setup: $(STAMP)

# Both embedded defaults, tracked in mlflow.db: classification (rendered `objects`) through
# `dvc repro` into artifacts/, then regression (rendered `rc`, CcGAN) with `cgankd run`
# into artifacts/regression/ (the same stage functions; `task: regression` in params.yaml
# makes `dvc repro` run it instead).
demo: demo-classification demo-regression

demo-classification: setup
	cgankd repro
	dvc metrics show
	@cat artifacts/report.md

demo-regression: setup
	cgankd run -S task=regression -S out_dir=artifacts/regression
	@cat artifacts/regression/report.md

lint: setup
	ruff check .

test: setup lint
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/render_speed.py
	$(PY) bench/compare.py --task classification
	$(PY) bench/compare.py --task regression
	$(VENV)/bin/cgankd ablate --work bench/work --reuse --resume -S fakes.n_per_class=200 -S subsample.max_draw_factor=10 --extra 'none-80="fakes.n_per_class=8"'
	$(VENV)/bin/cgankd ablate --work bench/work --reuse --resume -S task=regression -S fakes.n_per_label=2 -S subsample.max_draw_factor=10 --extra 'none-85="fakes.n_labels=43"'
	cp bench/work/ablation_objects.* bench/work/ablation_rc.* bench/results/

clean:
	rm -rf artifacts mlflow.db mlruns mlartifacts .prefect
