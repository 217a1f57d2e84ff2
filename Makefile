# Two commands for a fresh machine:
#   make run   - install what is needed and start the studio on http://127.0.0.1:7860
#   make test  - install everything (dev tools, Chromium for browser tests) and run the suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=
# torch first, pinned: on a CPU machine this takes the CPU build; a loose request would pull CUDA.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test install install-dev browser-deps lint typecheck clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.torch: | $(PY)
	$(PIP) install --quiet "$(TORCH_SPEC)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch | $(PY)
	$(PIP) install --quiet -e ".[train]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch | $(PY)
	$(PIP) install --quiet -e ".[dev,train,postgres]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(VENV)/bin/cstudio serve

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here).
browser-deps:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium; \
	  else echo "Install Chromium (Debian package 'chromium') for the browser tests." >&2; exit 1; fi; \
	fi

lint: install-dev
	$(VENV)/bin/ruff check .

typecheck: install-dev
	$(VENV)/bin/mypy backend db studio

test: install-dev browser-deps lint typecheck
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts
