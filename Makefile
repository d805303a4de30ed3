# patroni-router: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python

export SAM_CLI_TELEMETRY := 0
LAMBDA_ARCH ?= arm64
ifeq ($(LAMBDA_ARCH),arm64)
  LAMBDA_TARGET := aarch64-unknown-linux-gnu
  LAMBDA_FLAG := --arm64
else
  LAMBDA_TARGET := x86_64-unknown-linux-gnu
  LAMBDA_FLAG := --x86-64
endif
# cargo lambda writes under the cargo target dir, which CARGO_TARGET_DIR moves.
LAMBDA_ZIP := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/lambda/patroni-router/bootstrap.zip

.PHONY: help demo test unit fuzz deny bench bench-deps bench-lag bench-scale fmt venv cluster-deps validate terraform-test build release build-lambda invoke-local sam-build deploy clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

demo: venv cluster-deps build ## The main job: a real Patroni cluster, moto, the router routing a switchover and a kill -9, live
	scripts/with-moto.sh $(PY) scripts/demo.py

test: venv cluster-deps ## Every check and test: fmt, clippy, template lint, unit, property, moto, Lambda runtime, real-Patroni e2e
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	$(MAKE) --no-print-directory validate
	rm -f target/e2e-results.txt
	scripts/with-moto.sh cargo test
	$(MAKE) --no-print-directory terraform-test
	@echo "== measured by the end-to-end tests:"; cat target/e2e-results.txt 2>/dev/null || true

unit: ## Unit and property tests of the pure core only (no AWS, no Python)
	cargo test --lib

fmt: ## Format the code
	cargo fmt --all

cluster-deps: ## PostgreSQL, etcd (Debian) and Patroni (a venv in /opt) for the real local cluster; needs root
	scripts/localcluster.sh install

venv: $(VENV)/.installed ## The Python venv with moto, cargo-lambda, SAM CLI, cfn-lint (for tests)

$(VENV)/.installed: scripts/requirements-test.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
	touch $@

# A second cfn-lint version: each release catches things the other misses (1.51: E1018).
CFNLINT151 := .venv-cfnlint151
$(CFNLINT151)/.installed: scripts/requirements-cfnlint151.txt
	test -x $(CFNLINT151)/bin/python || python3 -m venv $(CFNLINT151)
	$(CFNLINT151)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-cfnlint151.txt
	touch $@

validate: venv $(CFNLINT151)/.installed ## Lint the SAM template: sam validate --lint, cfn-lint 1.58 and 1.51, intrinsic-function checks (offline)
	$(VENV)/bin/sam validate --lint --region eu-west-1
	$(VENV)/bin/cfn-lint template.yaml
	$(CFNLINT151)/bin/cfn-lint template.yaml
	$(PY) scripts/check_template.py template.yaml
	$(PY) scripts/test_check_template.py

# Skipped with a line when terraform is missing; uses the zip of build-lambda (built if absent).
terraform-test: venv ## The Terraform module (deploy/terraform) on moto: fmt, offline init, validate, apply, no-op plan, policy parity with template.yaml, destroy
	@if ! command -v terraform >/dev/null; then echo "terraform-test: SKIPPED - terraform is not installed"; exit 0; fi; \
	test -f $(LAMBDA_ZIP) || $(MAKE) --no-print-directory build-lambda || exit 1; \
	LAMBDA_ARCH=$(LAMBDA_ARCH) MOTO_IAM_LOAD_MANAGED_POLICIES=true scripts/with-moto.sh scripts/terraform-test.sh $(LAMBDA_ZIP)

invoke-local: venv build ## Run the function under cargo lambda watch against moto and the testbed (fake Patroni); invoke events/ (EVENTS=...)
	cargo build --example testbed
	scripts/with-moto.sh scripts/invoke-local.sh $(EVENTS)

build-lambda: venv ## The Lambda zip with cargo lambda (LAMBDA_ARCH=arm64|x86_64): target/lambda/patroni-router/bootstrap.zip (under CARGO_TARGET_DIR if set)
	rustup target add $(LAMBDA_TARGET)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cargo-lambda lambda build --release $(LAMBDA_FLAG) --output-format zip
	@ls -l $(LAMBDA_ZIP)

sam-build: venv ## sam build (Rust support is a SAM beta feature; uses cargo lambda, no Docker)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam build --beta-features

deploy: sam-build ## sam deploy --guided into your AWS account
	$(VENV)/bin/sam deploy --guided

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := patroni_json config webhook
fuzz: ## Run each cargo-fuzz target for FUZZ_SECONDS (needs nightly and cargo-fuzz; see README)
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
	  cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 || exit 1; \
	done

deny: ## License, ban and source checks of the dependency tree (cargo-deny; deny.toml)
	cargo deny check licenses bans sources

# Bench outputs (results, moto's request recording) go under target/ (or $CARGO_TARGET_DIR):
# a bench run leaves the work tree as it was.
BENCH_OUT := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/bench

bench-deps: venv ## What `make bench` needs besides cargo: the venv and GNU time (Debian `time`; needs root)
	test -x /usr/bin/time || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time)

bench: ## Benchmarks vs the Python/boto3 baseline on moto + the testbed (fake Patroni); writes target/bench/results.json
	@test -x $(PY) || { echo "make bench: $(PY) missing: run 'make bench-deps' (or 'make venv') first" >&2; exit 1; }
	@test -x /usr/bin/time || { echo "make bench: /usr/bin/time (GNU time, the Debian package 'time') is missing: run 'make bench-deps' or 'apt-get install time'" >&2; exit 1; }
	cargo build --release --bin patroni-router --example bench_reconcile --example testbed
	mkdir -p $(BENCH_OUT)
	BENCH_OUT=$(BENCH_OUT) MOTO_ENABLE_RECORDING=True MOTO_RECORDER_FILEPATH=$(BENCH_OUT)/moto_recording \
	  scripts/with-moto.sh $(PY) bench/run.py

bench-scale: ## serve over 1,000 and 10,000 testbed clusters on moto: AWS calls per API, CPU, failover lag (writes target/bench/scale.json; ~30 min)
	@test -x $(PY) || { echo "make bench-scale: $(PY) missing: run 'make bench-deps' (or 'make venv') first" >&2; exit 1; }
	cargo build --release --bin patroni-router --example testbed
	mkdir -p $(BENCH_OUT)
	BENCH_OUT=$(BENCH_OUT) MOTO_ENABLE_RECORDING=True MOTO_RECORDER_FILEPATH=$(BENCH_OUT)/moto_scale_recording \
	  scripts/with-moto.sh $(PY) bench/scale.py

bench-lag: venv cluster-deps ## Routing lag on the real local cluster, webhook vs watch, release build (writes target/bench/lag.json)
	cargo build --release --bin patroni-router
	BENCH_OUT=$(BENCH_OUT) ROUTER_BIN=$(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/release/patroni-router scripts/with-moto.sh $(PY) bench/lag.py

build: ## Debug build of the CLI
	cargo build

release: ## Optimised build of the CLI
	cargo build --release

clean: ## Remove build outputs and the venv
	cargo clean
	rm -rf $(VENV)
