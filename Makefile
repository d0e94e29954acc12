# The few everyday commands. `make help` lists them. CI runs `.ci/run` (= `make ci`).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

.PHONY: install
install: $(PY) ## create .venv and install pyevonas with the training, report and test extras (builds the Rust core)
	$(PIP) install -q -e '.[dev]'

.PHONY: build-dev
build-dev: $(PY) ## rebuild the Rust extension in place after editing rust/
	rm -f pyevonas/_core*.so
	$(VENV)/bin/maturin develop --release

# The wheel: one abi3 wheel (CPython >= 3.11) with the compiled core; installs without Rust.
WHEEL_DIR ?= dist
MATURIN ?= $(VENV)/bin/maturin

.PHONY: wheel
wheel: ## build the abi3 wheel of the engine into $(WHEEL_DIR)/ (needs maturin and cargo; the wheel needs neither)
	$(MATURIN) build --release --out $(WHEEL_DIR)

.PHONY: format
format: ## format and autofix: ruff (Python), rustfmt (Rust)
	$(VENV)/bin/ruff format pyevonas tests benchmarks
	$(VENV)/bin/ruff check --fix pyevonas tests benchmarks
	cargo fmt

.PHONY: lint
lint: ## check formatting, lints, types and the import layers: ruff, mypy, import-linter, rustfmt, clippy (stubtest checks the stubs in make test-all)
	$(VENV)/bin/ruff format --check pyevonas tests benchmarks
	$(VENV)/bin/ruff check pyevonas tests benchmarks
	$(VENV)/bin/mypy pyevonas
	$(VENV)/bin/lint-imports
	cargo fmt --check
	cargo clippy --release --all-features --all-targets -q -- -D warnings

.PHONY: test
test: ## the fast Python tests, for the edit-test loop (skips those marked slow)
	$(PY) -m pytest -q -m "not slow"

.PHONY: test-all
test-all: ## every Python test, the slow ones too (Ray, worker pools, SIGKILL/resume, real training)
	$(PY) -m pytest -q

.PHONY: test-rust
test-rust: ## run the Rust tests (no Python needed)
	cargo test --release -q

.PHONY: ci
ci: install lint test-rust test-all ## what CI runs: install, lints, Rust tests, every Python test

.PHONY: run
run: install ## the main job on its built-in offline default
	$(VENV)/bin/pyevonas evolve

.PHONY: bench
bench: ## benchmarks: criterion (Rust kernel), the similarity-matrix, per-call, archive-query and graph benchmarks through Python
	cargo bench --bench align
	$(PY) benchmarks/bench_similarity.py
	$(PY) benchmarks/bench_per_call.py
	$(PY) benchmarks/bench_archive_nearest.py
	$(PY) benchmarks/bench_graphs.py --json benchmarks/results_graphs.json

.PHONY: schemas
schemas: ## regenerate schemas/scoring.schema.json and schemas/graph_costs.schema.json from the pydantic models
	$(VENV)/bin/pyevonas schema export -o schemas/scoring.schema.json
	$(VENV)/bin/pyevonas schema export --graph-costs -o schemas/graph_costs.schema.json

.PHONY: clean
clean: ## remove build outputs
	rm -rf target pyevonas/_core*.so .pytest_cache .hypothesis
