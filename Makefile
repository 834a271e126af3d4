# The two commands of the README: `make run` and `make test`. Both bootstrap .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The dashboard is rebuilt (npm ci + vite build + its unit tests) only when its sources change.
DASHBOARD := dashboard/dist/.built
DASHBOARD_SRC := $(shell find dashboard/src -type f 2>/dev/null) $(wildcard dashboard/index.html \
	dashboard/package.json dashboard/package-lock.json dashboard/vite.config.ts dashboard/tsconfig.json \
	dashboard/openapi.json)

.PHONY: run test lint bench clean dashboard

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

$(DASHBOARD): $(DASHBOARD_SRC)
	cd dashboard && npm ci --no-audit --no-fund && npm run build && npm test
	touch $@

dashboard: $(DASHBOARD)

run: $(STAMP) $(DASHBOARD)
	$(BIN)/sigma up

lint: $(STAMP)
	$(BIN)/ruff check sigma tests benchmarks
	$(BIN)/ruff format --check sigma tests benchmarks
	$(BIN)/mypy sigma
	$(BIN)/lint-imports

test: lint $(DASHBOARD)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --cov --cov-report=term $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .coverage dashboard/dist dashboard/node_modules
