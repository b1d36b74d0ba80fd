# pulp_container developer entry points. Everything is implemented in scripts/*.sh; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

RUFF := .venv/bin/ruff
LINT_PATHS := pulp_container tests harness benchmarks

.PHONY: help install run test test-unit test-registry test-e2e test-s3 lint format \
	pg-start pg-stop pg-status clean distclean

help: ## Show this help
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

install: ## Install missing system packages and the .venv (idempotent)
	@scripts/install.sh

run: ## Install what is missing, run Pulp in the foreground (https://127.0.0.1:24817); Ctrl-C stops it
	@scripts/run.sh

test: install ## Run every test tier (unit, registry, e2e) on a separate test instance
	@PULP_SKIP_INSTALL=1 scripts/test.sh

test-unit: install ## Run tests/unit only
	@PULP_SKIP_INSTALL=1 scripts/test.sh tests/unit -v

test-registry: install ## Run tests/registry only (in-process, pytest-django)
	@PULP_SKIP_INSTALL=1 scripts/test.sh tests/registry -v

test-e2e: install ## Run tests/e2e only (starts a server, uses skopeo and podman)
	@PULP_SKIP_INSTALL=1 scripts/test.sh tests/e2e -v

test-s3: install ## Run the S3 + two-host stage of `make test` only (local S3 server, 2 API hosts)
	@PULP_SKIP_INSTALL=1 PULP_TEST_S3_STAGE=only scripts/test.sh

lint: install ## ruff check + ruff format --check
	$(RUFF) check $(LINT_PATHS)
	$(RUFF) format --check $(LINT_PATHS)

format: install ## ruff format + ruff check --fix
	$(RUFF) format $(LINT_PATHS)
	$(RUFF) check --fix $(LINT_PATHS)

pg-start: ## Start the embedded PostgreSQL of PULP_DATA_DIR (default .pulp)
	@scripts/postgres.sh start

pg-stop: ## Stop the embedded PostgreSQL of PULP_DATA_DIR
	@scripts/postgres.sh stop

pg-status: ## Show the embedded PostgreSQL of PULP_DATA_DIR
	@scripts/postgres.sh status

clean: ## Stop the embedded clusters and delete .pulp/ (all local Pulp data)
	-@scripts/postgres.sh stop
	-@PULP_DATA_DIR=.pulp/test scripts/postgres.sh stop
	rm -rf .pulp

distclean: clean ## clean, and delete .venv too
	rm -rf .venv .pytest_cache .ruff_cache
