# Two commands for a newcomer: `make demo` and `make test`. Each creates (or refreshes) the local
# virtualenv .venv and installs what it needs first; neither needs a Redis server.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := $(VENV)/.tools
DEV := $(VENV)/.dev

.PHONY: demo test test-fast test-dev dev compat bench bench-layer bench-distributed bench-server bench-django lint types \
	clean

# The test matrix (noxfile.py): the sdist, then a wheel built from it and installed into a fresh
# virtualenv for each Python, each tested outside the checkout. Only nox and the build tools go
# into .venv.
$(TOOLS): setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet 'nox>=2024.10' 'build>=1.2' 'twine>=5' 'virtualenv>=20.26' 'uv>=0.5'
	touch $(TOOLS)

test: $(TOOLS)
	$(VENV)/bin/nox

# A working copy for development: the package installed editable (its hot path compiled in
# place, rebuilt when a source changes), with the test and lint tools.
SOURCES := $(shell find channels_distributed -name '*.py' -o -name '*.pxd')

$(DEV): setup.cfg setup.py pyproject.toml $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[gunicorn,demo,test,dev]' channels_redis==4.3.0
	@# An extension left in place by an earlier build of a module no longer compiled would be
	@# imported instead of its source.
	$(PY) -c "import pathlib, channels_distributed.compiled as c; \
	[p.unlink() for p in pathlib.Path('channels_distributed').rglob('*.so') \
	 if '.'.join(('channels_distributed', *p.relative_to('channels_distributed').parts))\
	 .split('.cpython')[0].replace('/', '.') not in c.COMPILED]"
	touch $(DEV)

dev: $(DEV)

# make demo DEMO=--serve: stay up after the tour, until Ctrl-C.
demo: $(DEV)
	$(PY) -m channels_distributed.cli demo $(DEMO)

# The fast tier, after every edit: the tests that start no process (no Redis, no server), in
# seconds; tests/tiers.py says which those are and fails a fast test that starts one.
test-fast: $(DEV)
	$(PY) -m pytest -q -m "not processes"

# The whole suite on the working copy, compiled then on the Python sources: quicker than the
# matrix while editing.
test-dev: $(DEV) lint types
	$(PY) -m pytest -q -m "not compat"
	CHANNELS_DISTRIBUTED_NO_EXTENSIONS=1 $(PY) -m pytest -q -m "not compat"

compat: $(DEV)
	$(PY) tests/compat/run_channels_redis_suite.py
	$(PY) tests/compat/run_channels_redis_suite.py --topology cluster

lint: $(DEV)
	$(VENV)/bin/ruff check .

types: $(DEV)
	$(VENV)/bin/mypy

# Side-by-side benchmarks (they print ratios against the peers measured in the same run).
# bench-distributed and bench-server need nginx and wrk, bench-django wrk: apt-get install -y
# nginx wrk
bench: bench-layer bench-distributed bench-server bench-django

bench-layer: $(DEV)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/layer.py

bench-distributed: $(DEV)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/distributed.py

bench-server: $(DEV)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/server.py

bench-django: $(DEV)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/django_project.py

clean:
	rm -rf $(VENV) build dist *.egg-info
