# uvq-tflite: every target runs inside .venv/, built by `make setup`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
UVQ := $(BIN)/uvq-tflite
# Stage commands call `python`: make it the venv's. DVC never phones home.
IN_VENV := PATH="$(abspath $(BIN)):$$PATH" DVC_NO_ANALYTICS=1
DVC := $(IN_VENV) $(BIN)/dvc

.PHONY: help setup repro verify report test test-slow lint bench lock clean push pull sweep

help:
	@echo "make repro      set up if needed, then run the DVC pipeline (dvc repro)"
	@echo "make verify     gate metrics/*.json against params.yaml thresholds; non-zero on a breach"
	@echo "make report     render the plots to report/index.html (static SVG, works offline)"
	@echo "make test       run the default test suite"
	@echo "make test-slow  run the slow end-to-end tests"
	@echo "make lint       ruff over the library, stages and tests"
	@echo "make bench      time the pipeline, LiteRT latency (whole models and per op) and video scoring, write benchmarks/*.json"
	@echo "make sweep      queue, run and tabulate experiments over the INT8 settings (SWEEP=...)"
	@echo "make push       push every DVC output and the run cache to the default remote"
	@echo "make pull       pull them back (a teammate's clone then reruns nothing)"
	@echo "make setup      create .venv/ and install pinned dependencies (idempotent)"
	@echo "make clean      remove generated models, data and caches (keeps tracked files, .venv/ and DVC's cache)"

setup: $(STAMP)

# Where torch comes from. Empty: pip's own configuration (here, the CPU build on
# this disk). On an ordinary machine, where plain PyPI resolves torch to the
# CUDA build, use PyTorch's CPU wheels:
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH_FROM := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) --extra-index-url https://pypi.org/simple)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt $(TORCH_FROM) torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

repro: setup
	$(UVQ) toolchain
	$(UVQ) check-params
	$(DVC) repro

verify: setup
	$(IN_VENV) $(UVQ) gate

report: setup
	$(IN_VENV) $(UVQ) report

# Each word of SWEEP is one experiment, name=param:value[,param:value]; a rerun
# replaces the experiments of the same names.
SWEEP ?= est-mse=full_int8.estimator:mse est-percentile=full_int8.estimator:percentile \
	cal-12=calibration.frames_per_clip:12
SWEEP_COLUMNS := Experiment|.*estimator|.*frames_per_clip|.*full_int8\.correlation|.*full_int8\.max_rel_diff

sweep: setup
	@for exp in $(SWEEP); do \
	  name=$${exp%%=*}; sets=$$(echo "$${exp#*=}" | tr ',' ' '); \
	  args=""; for s in $$sets; do args="$$args -S $${s%%:*}=$${s#*:}"; done; \
	  $(DVC) exp remove $$name >/dev/null 2>&1; \
	  echo "queue $$name:$$args"; $(DVC) exp run --queue -n $$name $$args || exit 2; \
	done
	$(DVC) exp run --run-all --jobs 1
	$(DVC) exp show --md --no-pager --drop '.*' --keep '$(SWEEP_COLUMNS)'

# The default remote is a folder beside the repository (.dvc/config: `local`);
# repoint it with `dvc remote modify --local local url <url>` (README).
push: setup
	$(DVC) push --run-cache

pull: setup
	$(DVC) pull --run-cache

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

lint: setup
	$(BIN)/ruff check uvq_tflite stages tests

bench: setup
	$(IN_VENV) $(PY) -m uvq_tflite.bench

lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^pip==' | sed 's/+cpu$$//' > constraints.txt.new
	@{ head -2 constraints.txt; cat constraints.txt.new; } > constraints.txt.tmp
	@rm constraints.txt.new && mv constraints.txt.tmp constraints.txt

# Only what git ignores: the tracked models/*/.gitignore files stay.
clean:
	git clean -fdXq -- models data report
	rm -rf .pytest_cache .hypothesis
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
