# The two quick-start commands: `make demo` and `make test`. Both create .venv on first use.
# The first of python3, python3.13, python3.12, python3.11 that is 3.11 or newer (or PYTHON=...).
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; exit 0; }; done; echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench sandbox clean lint python

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "importconsole needs Python 3.11 or newer (found %s); set PYTHON=python3.11" % sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "could not create $(VENV): on Debian/Ubuntu install python3-venv (apt-get install python3-venv), then run make again"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/importconsole --demo

sandbox: $(STAMP)
	$(BIN)/importconsole sandbox --seed demo --port 8765

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff, the import-layer contract (import-linter) and mypy on the packages that pass it; versions pinned in the lint extra.
LINT_STAMP := $(VENV)/.lint-installed
$(LINT_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	@touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

python:  # which Python the targets use (.ci/run asks)
	@echo $(PYTHON)
