# Two commands for a newcomer: `make demo` and `make test`. Each one creates (or refreshes)
# the local virtualenv .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check compat bench lint types clean

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m channels_distributed.cli demo

# The whole suite: lint, types, tests, then the channels_redis compatibility target.
test: $(STAMP) lint types
	$(PY) -m pytest -q -m "not compat"
	$(MAKE) compat

compat: $(STAMP)
	$(PY) tests/compat/run_channels_redis_suite.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

types: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/layer.py

clean:
	rm -rf $(VENV) build *.egg-info
