# gapscope — two commands do all set-up on a fresh machine:
#   make dashboards   # venv + install, then Voilà; the gallery is http://127.0.0.1:8866/voila/files/gallery.html
#   make test         # venv + install (+ Debian's chromium), lint, then the whole test suite
# Also: make test-fast (kernels + widgets without the slow tests), make lint, make bench (make kwant: its peer).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8866
STAMP  := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
PYTEST := $(BIN)/python -m pytest
JOBS   ?= 2

.PHONY: dashboards hub test test-fast lint install browser bench kwant clean

# Reinstall when the metadata changes: pyproject.toml, or the version in src/gapscope/__init__.py.
$(STAMP): pyproject.toml src/gapscope/__init__.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# JupyterHub's proxy (a node package) for `make hub` and tests/e2e/test_hub.py, inside the venv
	@if command -v npm >/dev/null 2>&1; then npm install --silent --no-fund --no-audit --prefix $(VENV)/node \
		configurable-http-proxy; else echo "warning: npm missing: no configurable-http-proxy (make hub, hub test)"; fi
	touch $(STAMP)

install: $(STAMP)

# serve/run: Voilà with serve/voila.py (timeouts, upload size, culling); 127.0.0.1 by default
# (IP=0.0.0.0 serves a class on a network); GAPSCOPE_DATA_ROOT is the only folder paths may name;
# GAPSCOPE_POOL=gap=30 preheats 30 gap dashboards for a class (docs/class-server.md); as root, 127.0.0.1 only.
dashboards: install
	PORT=$(PORT) BIN=$(BIN) ./serve/run

# A JupyterHub for a class (one server per student, login, limits, idle culler): serve/jupyterhub_config.py,
# docs/class-server.md.  Logs in with the machine's accounts (PAM); run it as root for that.
hub: install
	$(BIN)/jupyterhub -f serve/jupyterhub_config.py

# Debian's Chromium for the browser tests (Playwright drives it; its own browser download fails here).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else echo "warning: $(CHROMIUM) missing and no root: browser tests will be skipped"; fi; \
	fi

# ruff on the whole repository, mypy on the kernels (config in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Every tier; each pytest call selects tests, so none can exit 5 (nothing collected).
#   1. everything in tests/ except the browser tier (kernels, widgets, repository checks), on $(JOBS) workers
#   2. the notebooks, executed by nbval
#   3. the browser tier: Voilà + headless Chromium, serial (it starts its own server)
test: lint browser
	$(PYTEST) -n $(JOBS) -m "not browser" --durations=10 tests
	$(PYTEST) --nbval-lax notebooks
	$(PYTEST) -m browser tests

# Quick loop while editing: kernels + widgets + repository checks, slow tests left out.
test-fast: install
	$(PYTEST) -n $(JOBS) -m "not slow and not browser" tests/kernels tests/widgets tests/test_repository.py

bench: install
	$(BIN)/python benchmarks/bench.py

# kwant 1.5, the lattice benchmark's second peer, builds only against numpy < 2: its own venv, found by
# benchmarks/bench_ysr_lattice.py (not needed by the dashboards or the tests).
KWANT_VENV ?= .venv-kwant
kwant:
	$(PYTHON) -m venv $(KWANT_VENV)
	$(KWANT_VENV)/bin/python -m pip install --quiet "numpy<2" "scipy<1.14" cython tinyarray packaging setuptools wheel
	$(KWANT_VENV)/bin/python -m pip install --quiet --no-build-isolation kwant==1.5.0

clean:
	rm -rf $(VENV) $(KWANT_VENV) .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info src/*.egg-info
