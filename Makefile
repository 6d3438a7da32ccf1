# Two commands do all set-up on a fresh machine:
#   make serve   install, build the index, serve the chat page on http://127.0.0.1:8000/
#   make test    install (Chromium too, for the browser tests), run the whole test suite
# Everything installs into .venv; torch is pinned to the local CPU build first, because any
# other torch pulls a multi-GB CUDA build.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install browser serve lint test bench eval clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use: Chromium and CJK fonts for the playwright tests (playwright's
# own download does not work here), nginx for the reverse-proxy tests (deploy/); and axe-core
# (npm) for the accessibility checks, into node_modules/.
AXE_CORE ?= 4.14.1
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "noto.*cjk" \
	    || ! { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium fonts-noto-cjk nginx; \
	fi
	@if [ ! -f node_modules/axe-core/axe.min.js ]; then \
	  npm install --no-save --no-package-lock --no-audit --no-fund axe-core@$(AXE_CORE); \
	fi

serve: install
	$(VENV)/bin/restake-qa serve

# ruff (lint and format) and mypy, configured in pyproject.toml; `make test` runs them first
lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

test: install browser lint
	$(PY) -m pytest

eval: install
	$(VENV)/bin/restake-qa eval

# BENCH_ARGS=--quick for a short smoke run; results in bench/results/ (see bench/README.md)
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .restake-qa test-artifacts .pytest_cache .hypothesis node_modules
