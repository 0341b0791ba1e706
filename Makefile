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

.PHONY: pins setup demo demo-classification demo-regression demo-effect demo-gpu gpu-check ui team-stack test lint bench bench-serving clean

EXTRAS := train,gpu,track,scale,data,dev
# constraints.txt pins every package of the full install with the sha256 of each of its files on PyPI (`make pins`
# writes it). uv is installed by pip in hash-checking mode from its own lines; uv checks every other file it installs
# against the hashes, whichever index served it, so a pinned version planted on an extra index does not install
# (uv's default index strategy cannot resolve against mirrors that hold some versions only, as this machine's do).
# uv installs the same pinned set as pip, unpacking in parallel: `make setup` 55 s instead of 2.6-3.0 min on the
# 2-core machine (torch's CUDA wheels are 5.5 GB unpacked). uv does not read pip's configuration, so pip's index,
# extra indexes and find-links (a mirror, a local folder) are handed on. Where uv cannot be installed or fails, pip
# does it without the hashes (pip refuses hashes beside an editable install). --compile-bytecode as pip does: where
# PYTHONDONTWRITEBYTECODE is set (this machine, CI), a venv without .pyc files compiles every module in every process.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	awk '/^uv==/{p=1} p{print} p&&!/\\$$/{exit}' constraints.txt > $(VENV)/uv-pin.txt
	awk '!/^ *--hash=/{sub(/ \\$$/,""); print}' constraints.txt > $(VENV)/constraints-unhashed.txt
	@if $(PY) -m pip install -q --disable-pip-version-check --require-hashes -r $(VENV)/uv-pin.txt; then \
	  extra="$${PIP_EXTRA_INDEX_URL:-$$($(PY) -m pip config get global.extra-index-url 2>/dev/null)}"; \
	  links="$${PIP_FIND_LINKS:-$$($(PY) -m pip config get global.find-links 2>/dev/null)}"; \
	  index="$${PIP_INDEX_URL:-$$($(PY) -m pip config get global.index-url 2>/dev/null)}"; \
	  if [ -n "$$index" ]; then export UV_INDEX_URL="$$index"; fi; \
	  if [ -n "$$extra" ]; then export UV_EXTRA_INDEX_URL="$$extra"; fi; \
	  if [ -n "$$links" ]; then export UV_FIND_LINKS="$$links"; fi; \
	  echo "setup: uv pip install -c constraints.txt -e .[$(EXTRAS)] (hashes checked)"; \
	  $(VENV)/bin/uv pip install --python $(PY) -q --index-strategy unsafe-best-match --compile-bytecode \
	    -c constraints.txt --build-constraint constraints.txt -e ".[$(EXTRAS)]"; \
	else false; fi || { echo "setup: uv failed or is missing; pip installs instead, without checking the hashes"; \
	  $(PY) -m pip install -q --disable-pip-version-check -c $(VENV)/constraints-unhashed.txt -e ".[$(EXTRAS)]"; }
	touch $(STAMP)

# constraints.txt, re-resolved against PyPI after a change to pyproject.toml's dependencies: the versions already
# pinned are kept where they still fit; every file of each pinned version is hashed (all platforms)
pins: $(STAMP)
	printf 'uv\nsetuptools>=68\n' > $(VENV)/tools.in
	$(VENV)/bin/uv pip compile pyproject.toml $(VENV)/tools.in --all-extras -c constraints.txt --generate-hashes \
	  --no-annotate --index-url https://pypi.org/simple --python-version 3.11 --custom-compile-command "make pins" \
	  -o constraints.txt

# DVC's remote for dvc push / pull: the team's (CGANKD_DVC_REMOTE_URL, from team-stack's client.env) or this
# user's folder outside every checkout; .dvc/config.local, written once (`cgankd dvc-remote` rewrites it)
.dvc/config.local: | $(STAMP)
	$(VENV)/bin/cgankd dvc-remote

setup: $(STAMP) .dvc/config.local

# Both embedded tasks, tracked in mlflow.db, with `cgankd run` (the stage functions that `dvc repro` and the
# Prefect flows call): classification (rendered `objects`) into artifacts/ under profiles/cpu-demo.yaml (16x16,
# 4 D steps, the GAN step compiled with max-autotune, 3,600 GAN iterations), then regression (rendered `rc`,
# CcGAN) into artifacts/regression/ under profiles/cpu-effect-rc.yaml (16x16, 4 D steps, 2,000 iterations).
# Each part prints its report (the fakes' verdict, cGAN-KD against NOKD), then its wall-clock time.
demo: demo-classification demo-regression

# a demo part's last line: its wall-clock time since the recipe set `start=$$SECONDS`
TOOK = echo "make $@: $$(( (SECONDS - start) / 60 )) min $$(( (SECONDS - start) % 60 )) s"

# the demo's GAN is compiled: without a C++ compiler (or triton on CUDA) it runs eager, about half as fast
demo-classification: setup
	@start=$$SECONDS; extra=; problem=$$($(PY) -c "from cgankd.compute.device import compiler_problem, \
	  resolve_device; print(compiler_problem(resolve_device('auto')) or '')"); if [ -n "$$problem" ]; then \
	  echo "make demo-classification: $$problem; the GAN runs uncompiled (-S compile=false), about half as fast"; \
	  extra="-S compile=false"; fi; \
	cgankd run -S profile=cpu-demo $$extra -S out_dir=artifacts && dvc metrics show && $(TOOK)

demo-regression: setup
	@start=$$SECONDS; cgankd run -S profile=cpu-effect-rc -S out_dir=artifacts/regression && $(TOOK)

# the CPU effect profile (profiles/cpu-effect.yaml, docs/results.md): classification at 16x16 with a
# GAN trained to 8,000 iterations (about an hour on 2 cores), where cGAN-KD can beat NOKD on the CPU
# (on 2 of 3 full-pipeline seeds; not a gain to count on)
demo-effect: setup
	cgankd run -S profile=cpu-effect -S out_dir=artifacts/effect

# both embedded defaults under the GPU profile (profiles/gpu.yaml: CUDA, bf16, compile, published
# scale); without a usable GPU it stops in one line
demo-gpu: setup
	cgankd run -S profile=gpu -S out_dir=artifacts/gpu
	cgankd run -S profile=gpu -S task=regression -S out_dir=artifacts/gpu/regression

# the offline GPU check (docs/gpu.md): needs only torch + CUDA, torchvision, numpy, PyYAML, onnx,
# onnxruntime and pytest; no set-up, no network; everything it writes in gpu_check/
gpu-check:
	bench/gpu_check.sh gpu_check

# after `make demo`: the MLflow UI on mlflow.db; prints the address of the runs table
ui: setup
	cgankd ui

# a team's tracking stack for a try-out: PostgreSQL, an MLflow server and a Prefect server on it
# (data in .team-stack/); prints MLFLOW_TRACKING_URI and PREFECT_API_URL to export elsewhere
team-stack: setup
	cgankd team-stack

lint: setup
	ruff check .

# two pytest-xdist workers on the 2-core machine (the serial suite kept only ~1.2 of its 2 cores busy:
# start-up, MLflow, DVC and servers are single-threaded), each given whole modules, so that a module's
# fixtures are built once (xdist's loadgroup cannot group on pytest 9); TEST_WORKERS=0: this process alone
TEST_WORKERS ?= 2
test: setup lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=25

bench: setup
	$(PY) bench/render_speed.py
	$(PY) bench/compare.py --task classification
	$(PY) bench/compare.py --task regression
	$(VENV)/bin/cgankd ablate --work bench/work --reuse --resume -S fakes.n_per_class=200 -S subsample.max_draw_factor=10 --extra 'none-80="fakes.n_per_class=8"'
	$(VENV)/bin/cgankd ablate --work bench/work --reuse --resume -S task=regression -S fakes.n_per_label=2 -S subsample.max_draw_factor=10 --extra 'none-85="fakes.n_labels=43"'
	cp bench/work/ablation_objects.* bench/work/ablation_rc.* bench/results/
	# the KD table reuses the comparison's teachers, GANs and extractors (seeds 0-2); fakes are re-made
	for s in 0 1 2; do d=bench/work/kd/classification/seed$$s/teacher-resnet20; mkdir -p $$d/metrics; \
	  for x in prepared teacher gan extractor; do test -e $$d/$$x || cp -r bench/work/classification/seed$$s/$$x $$d/; done; \
	  cp -n bench/work/classification/seed$$s/metrics/teacher.json bench/work/classification/seed$$s/metrics/extractor.json $$d/metrics/; done
	$(VENV)/bin/cgankd compare --pairs resnet20:convnet_s resnet20:resnet8 --seeds 0 1 2 --work bench/work/kd --reuse --resume
	cp bench/work/kd/compare_objects.json bench/results/kd_compare_objects.json
	cp bench/work/kd/compare_objects.md bench/results/kd_compare_objects.md

# after `make demo`: its registered students and teachers, PyTorch eager vs onnxruntime; then a
# load test of `cgankd serve` on the classification champion
bench-serving: setup
	$(PY) bench/latency.py --dirs artifacts artifacts/regression
	$(PY) bench/loadtest.py --model models:/cgankd-objects@champion --requests 5000 --clients 16

clean:
	rm -rf artifacts mlflow.db mlflow.db.init-lock mlruns mlartifacts .prefect .team-stack
