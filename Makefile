# Cordon: one entry point for building, trying, testing and measuring.
CARGO ?= cargo
CORDON := target/x86_64-unknown-linux-gnu/release/cordon

.PHONY: all deps build demo test lint bench clean

all: build

deps:
	tests/scripts/setup-deps.sh

build: deps
	$(CARGO) build --release --bins

# Quick start 1: build, then run a busybox container in the sandbox.
demo: build
	tests/scripts/busybox-bundle.sh target/bundles/demo
	$(CORDON) --root target/run run --bundle target/bundles/demo demo-$$$$

# Quick start 2: every test (unit, syscall compatibility, busybox, CLI).
test: build
	$(CARGO) test --release --workspace
	# The ptrace platform (--platform=ptrace) stays covered too.
	CORDON_TEST_FLAGS=--platform=ptrace $(CARGO) test --release -p cordon-tests --test compat --test busybox --test isolation --test memory

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: build
	tests/scripts/setup-deps.sh --bench
	python3 tests/bench/run.py --json target/bench/results.json

clean:
	$(CARGO) clean
