# The template's own commands. `make demo` renders a project with the defaults
# (install, init_db and smoke test included); `make test` runs the whole suite.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help demo test test-deps bench bench-quick bench-instructions bench-gate bench-gate-update bench-outbox bench-auth image-test postgres clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/cookiecutter: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '.[test]'
	touch $@

postgres: ## Start the local PostgreSQL cluster if it is installed but stopped
	@bash scripts/ensure_postgres.sh

demo: $(BIN)/cookiecutter postgres ## Render the defaults into build/demo/ and check them
	rm -rf build/demo
	$(BIN)/cookiecutter . --no-input --output-dir build/demo

test-deps: ## Chromium, buildah, debootstrap, valgrind, docker (apt; dockerd started), compose plugin, npm tools
	bash scripts/install_test_deps.sh

test: $(BIN)/cookiecutter postgres test-deps ## Run the template's whole test suite
	$(BIN)/pytest -n auto --dist loadgroup --durations=25

bench: $(BIN)/cookiecutter postgres ## Benchmark the rendered service against a raw baseline (≤ 15 min); bench/results/
	$(BIN)/python bench/run.py

bench-quick: $(BIN)/cookiecutter postgres ## A one-minute smoke of the benchmark (writes to build/bench-quick/)
	$(BIN)/python bench/run.py --quick --output build/bench-quick

bench-instructions: $(BIN)/cookiecutter postgres test-deps ## Instructions per request, counted by callgrind (~2 min); bench/results/
	$(BIN)/python bench/instructions.py

bench-outbox: $(BIN)/cookiecutter postgres ## The outbox's cost (transfers/s with/without, alternated) and one worker's deliveries (~6 min); build/bench-outbox/
	$(BIN)/python bench/outbox.py

bench-auth: $(BIN)/cookiecutter postgres ## Authentication's cost per account read: none, cached token, miss RS256/EdDSA, CPU alternated and callgrind (~15 min); build/bench-auth/
	$(BIN)/python bench/auth_cost.py --instructions

bench-gate: $(BIN)/cookiecutter postgres test-deps ## CI's gate: instructions per read and transfer within +5% of bench/results/gate.json (~1 min)
	$(BIN)/python bench/instructions.py --gate

bench-gate-update: $(BIN)/cookiecutter postgres test-deps ## Recount and commit the gate's figures after an intended change
	$(BIN)/python bench/instructions.py --gate --update

image-test: $(BIN)/cookiecutter postgres test-deps ## Only the image test: build and run the rendered image with buildah (root)
	$(BIN)/pytest tests/test_image.py

clean: ## Remove the virtual environment and rendered output
	rm -rf $(VENV) build
