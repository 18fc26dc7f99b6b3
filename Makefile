# Two commands for a newcomer: `make demo` and `make test`. Each one creates (or refreshes)
# the local virtualenv .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test compat bench bench-layer bench-distributed bench-server lint types clean

# The hot path is compiled in place (setup.py): a change to the package rebuilds the extensions.
SOURCES := $(shell find channels_distributed -name '*.py' -o -name '*.pxd')

$(STAMP): setup.cfg setup.py pyproject.toml $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m channels_distributed.cli demo

# The whole suite: lint, types, tests (on the compiled build, then again on the Python sources),
# then the channels_redis compatibility target.
test: $(STAMP) lint types
	$(PY) -m pytest -q -m "not compat"
	CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1 $(PY) -m pytest -q -m "not compat"
	$(MAKE) compat

compat: $(STAMP)
	$(PY) tests/compat/run_channels_redis_suite.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

types: $(STAMP)
	$(VENV)/bin/mypy

# Side-by-side benchmarks (they print ratios against the peers measured in the same run).
# bench-distributed and bench-server need nginx and wrk: apt-get install -y nginx wrk
bench: bench-layer bench-distributed bench-server

bench-layer: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/layer.py

bench-distributed: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/distributed.py

bench-server: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/server.py

clean:
	rm -rf $(VENV) build *.egg-info
