# genosynth: `make run` sets up .venv and runs the demo pipeline; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/demo

.PHONY: install run test bench lint workflows images clean

$(BIN)/genosynth: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull multi-GB CUDA wheels.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,gcs]'
	@touch $@

install: $(BIN)/genosynth

run: install
	test -f $(RUN_DIR)/input/dataset.json || $(BIN)/genosynth datasets get demo --out $(RUN_DIR)/input
	$(BIN)/genosynth run $(RUN_DIR)/input --out $(RUN_DIR)/run
	@echo "report: $(RUN_DIR)/run/report/index.html"

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks

lint: install
	$(BIN)/ruff check services tests benchmarks

workflows: install
	$(BIN)/genosynth workflows render --out workflows --chart-dir charts/genosynth

images:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		docker build -f images/cpu/Dockerfile -t genosynth-cpu:0.1.0 . && \
		docker build -f images/gpu/Dockerfile -t genosynth-gpu:0.1.0 . ; \
	else \
		echo "make images: no container engine here (docker info failed); build on a machine with Docker or in CI." ; \
	fi

clean:
	rm -rf $(VENV) runs .pytest_cache
