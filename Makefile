# llama-index-rs: every task has a target here. `make help` lists them.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# LlamaIndex's tokenizer data ships in the package; without this, worker processes try to download it.
export TIKTOKEN_CACHE_DIR := $(shell $(PYTHON) -c "import os, llama_index.core as c; print(os.path.join(os.path.dirname(c.__file__), '_static', 'tiktoken_cache'))" 2>/dev/null)
export PYTHONHASHSEED ?= 0

.DEFAULT_GOAL := help
.PHONY: help deps install build demo test test-rust test-python test-exhaustive fuzz lint format bench bench-rust clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

deps: ## Install build and test tools (maturin, pytest, hypothesis; Rust via rustup must exist)
	$(PIP) install --quiet --disable-pip-version-check "maturin>=1.7,<2" "pytest>=8" "hypothesis>=6.100" "numpy>=1.24" "fsspec>=2023.5.0" "llama-index-core>=0.14.0,<0.15"

install: deps ## Build the extension (release) and install the package with its dependencies
	$(PIP) install --quiet --disable-pip-version-check --no-build-isolation .

build: install ## Alias of install

demo: install ## Build, persist, reload and query a VectorStoreIndex over the bundled corpus; time it against SimpleVectorStore
	$(PYTHON) demo/run_demo.py

test: install test-rust test-python ## Everything: Rust core tests and the Python suite

test-rust: ## Rust core tests (no Python: proves the core builds without PyO3)
	cargo test --no-default-features --quiet

test-exhaustive: ## Every f32 the JSON writer's fast path formats, against the general path (release build, ~2 min)
	cargo test --no-default-features --release --quiet --lib every_f32 -- --ignored

test-python: ## Python suite: differential tests against LlamaIndex's Simple* stores
	$(PYTHON) -m pytest -q -p no:cacheprovider tests

FUZZ_SECONDS ?= 60
fuzz: ## Bounded fuzzing: every cargo-fuzz target FUZZ_SECONDS s on one core (corpus replay without nightly)
	fuzz/run.sh $(FUZZ_SECONDS)

lint: ## clippy + rustfmt check + ruff
	cargo fmt --check
	cargo clippy --no-default-features -- -D warnings
	cargo clippy -- -D warnings
	$(PYTHON) -m ruff check python tests benches demo
	$(PYTHON) -m ruff format --check python tests benches demo

format: ## Format Rust and Python code
	cargo fmt
	$(PYTHON) -m ruff format python tests benches demo

bench: install ## Side-by-side benchmark table (ours vs Simple* stores vs numpy vs FAISS); never gates CI
	$(PIP) install --quiet --disable-pip-version-check faiss-cpu usearch
	$(PYTHON) benches/compare.py

clean: ## Remove build artefacts
	cargo clean
	rm -rf dist build .pytest_cache .hypothesis
