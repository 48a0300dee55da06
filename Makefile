# The two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
FENQI := $(VENV)/bin/fenqi
export FENQI_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test lint bench venv venv-test browser clean

$(VENV)/.stamp-base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@ $(VENV)/.stamp-base

venv: $(VENV)/.stamp-base
venv-test: $(VENV)/.stamp-test

demo: venv
	$(FENQI) demo

lint: venv-test
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/mypy

# what the browser tests need beyond Python packages: Debian's Chromium (installed when missing)
browser:
	scripts/ensure-chromium.sh

test: venv-test lint browser
	$(PY) -m pytest -n 2 --dist loadfile

bench: venv-test
	$(PY) bench/ledger.py
	$(PY) bench/risk.py
	$(PY) bench/checkout.py
	$(PY) bench/eod.py --accounts 100000

clean:
	rm -rf $(VENV) .fenqi build *.egg-info
