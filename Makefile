# patroni-router: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help test check fmt clippy unit venv build release clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

test: venv ## Every check and test: fmt, clippy, unit, property and moto integration tests
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	scripts/with-moto.sh cargo test

unit: ## Unit and property tests of the pure core only (no AWS, no Python)
	cargo test --lib

fmt: ## Format the code
	cargo fmt --all

venv: $(VENV)/.installed ## The Python venv with moto (for tests)

$(VENV)/.installed: scripts/requirements-test.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
	touch $@

build: ## Debug build of the CLI
	cargo build

release: ## Optimised build of the CLI
	cargo build --release

clean: ## Remove build outputs and the venv
	cargo clean
	rm -rf $(VENV)
