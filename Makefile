# gapscope — two commands do all set-up on a fresh machine:
#   make dashboards   # venv + install, then Voilà on http://127.0.0.1:8866 (gallery of all dashboards)
#   make test         # venv + install (+ Debian's chromium), then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8866
STAMP  := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: dashboards test install browser bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

dashboards: install
	@echo ""
	@echo "  gapscope: open http://127.0.0.1:$(PORT)/voila/render/index.ipynb  (gallery of all dashboards)"
	@echo "  Ctrl-C stops the server."
	@echo ""
	JUPYTER_RUNTIME_DIR=$$(mktemp -d) $(BIN)/voila notebooks --no-browser --port=$(PORT) --Voila.ip=127.0.0.1 \
		--ServerApp.allow_root=True \
		--MappingKernelManager.cull_interval=60 --MappingKernelManager.cull_idle_timeout=600

# Debian's Chromium for the browser tests (Playwright drives it; its own browser download fails here).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else echo "warning: $(CHROMIUM) missing and no root: browser tests will be skipped"; fi; \
	fi

test: install browser
	$(BIN)/python -m pytest --nbval-lax tests notebooks

bench: install
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
