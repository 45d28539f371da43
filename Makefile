# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install system-packages lint format test test-portal-postgres test-slow demo kiosk-app screenshots bench bench-history clean

$(INSTALLED): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-input -r requirements.lock 2> >(grep -v "^WARNING: Location" >&2)
	$(BIN)/pip install --quiet --no-input --no-deps -e . 2> >(grep -v "^WARNING: Location" >&2)
	touch $@

install: $(INSTALLED)

system-packages:
	scripts/system-packages.sh

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The whole suite on SQLite, then the portal's tests again on PostgreSQL.
test: install system-packages lint
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)
	$(MAKE) test-portal-postgres

test-portal-postgres: install
	$(BIN)/python scripts/with_postgres.py $(BIN)/pytest tests/portal -m "not slow" -q $(PYTEST_ARGS)

# Long soak and size runs, on demand.
test-slow: install system-packages
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

demo: install
	$(BIN)/python -m portal.demo

bench: install system-packages
	$(BIN)/python benchmarks/portal_api.py

# The frozen station app: dist/flash-kiosk/flash-kiosk.
kiosk-app: install
	$(BIN)/pyinstaller --noconfirm pyinstaller.spec

# Drives the app in Chromium and refreshes docs/screenshots/ (root: loop devices).
screenshots: install system-packages
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest tests/e2e/test_station_browser.py -k check_download_flash -q

bench-history: install system-packages
	$(BIN)/python scripts/with_postgres.py $(BIN)/python benchmarks/history.py

clean:
	rm -rf $(VENV) var build dist .mypy_cache .pytest_cache .ruff_cache
