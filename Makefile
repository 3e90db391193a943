# Ferry: `make run` starts the service, `make test` runs every test. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FERRY := $(VENV)/bin/ferry
HOST ?= 127.0.0.1
PORT ?= 3000
DATA ?= ./data
SPECTRAL_VERSION ?= 6.16.3
REDOCLY_VERSION ?= 1.34.20
# `score` is in Redocly CLI 2 only.
REDOCLY_SCORE_VERSION ?= 2.77.0

.DEFAULT_GOAL := help

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed ## Create .venv and install Ferry with its test tools

run: install ## Start ferry serve on 127.0.0.1:3000 with its data in ./data
	$(FERRY) serve --host $(HOST) --port $(PORT) --data-dir $(DATA) $(ARGS)

# Run a second time on PostgreSQL by `make test` (the storage and CLI tests cover both
# backends in the first run already).
PG_API_TESTS ?= tests/api/test_downloads_api.py tests/api/test_import_api.py \
	tests/api/test_workspace_api.py tests/api/test_auth_and_users.py tests/api/test_operability.py

test: install ## Run the whole test suite (and the app-level subset on PostgreSQL where installed)
	$(PY) -m pytest -q $(T)
	@if [ -n "$(T)" ]; then exit 0; \
	elif $(PY) -c "from tests.support.postgres import bin_dir; raise SystemExit(bin_dir() is None)"; then \
		echo "PostgreSQL is installed: the app-level subset again, on PostgreSQL"; \
		FERRY_TEST_BACKEND=postgresql $(PY) -m pytest -q $(PG_API_TESTS); \
	else \
		echo "PostgreSQL is not installed: its tests were skipped (apt-get install -y postgresql)"; \
	fi

lint-python: install ## ruff check and ruff format --check (what CI runs)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

lint: lint-python ## lint-python; openapi.yaml through the validator, Spectral, Redocly (lint, and its score at 90 or more), generated TypeScript and the breaking-change gate (needs npx)
	$(PY) -c "from openapi_spec_validator import validate; from openapi_spec_validator.readers import read_from_filename; validate(read_from_filename('openapi.yaml')[0]); print('openapi.yaml is valid')"
	npx --yes @stoplight/spectral-cli@$(SPECTRAL_VERSION) lint --fail-severity=warn openapi.yaml
	npx --yes @redocly/cli@$(REDOCLY_VERSION) lint openapi.yaml
	tests/contract/typescript/check.sh
	PYTHON=$(PY) tests/contract/breaking_changes.sh
	PYTHON=$(PY) REDOCLY_SCORE_VERSION=$(REDOCLY_SCORE_VERSION) tests/contract/redocly_score.sh

format: install ## Reformat the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-downloads: install ## Benchmark downloads: 1 GiB vs curl/aria2c/dd oflag=direct, 100x5 MiB in one batch vs aria2c -j 16, RSS, API latency
	$(PY) bench/bench_downloads.py $(ARGS)

bench-files: install ## Benchmark the file server: 1 GiB and 1,000 small files up and down vs nginx WebDAV (or a Python peer), a 2 GiB zip with peak RSS
	$(PY) bench/bench_files.py $(ARGS)

bench-import: install ## Benchmark prepare and import of generated CSV and Slack exports
	$(PY) bench/bench_import.py $(ARGS)

bench-load: install ## Mixed API load on a live server during 50 downloads and a 100k-message import, twice
	$(PY) bench/load.py $(ARGS)

bench-scale: install ## The batch and a read load on 1-2 API instances and 1-2 workers on PostgreSQL vs one TinyDB server
	$(PY) bench/bench_scale.py $(ARGS)

bench-handlers: install ## CPU per in-process request with and without the Connexion patch
	$(PY) bench/bench_connexion_speedups.py $(ARGS)

clean: ## Remove the virtualenv and caches (not ./data)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info

.PHONY: help install run test lint-python lint format bench-downloads bench-files bench-import bench-load bench-scale bench-handlers clean
