# Two commands for a newcomer: `make demo` and `make test`. Each creates (or refreshes) the local
# virtualenv .venv and installs what it needs first; neither needs a Redis server.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := $(VENV)/.tools
DEV := $(VENV)/.dev

.PHONY: demo test test-fast test-dev dev lock compat bench bench-layer bench-distributed bench-scale bench-server bench-django lint types \
	clean

# The test matrix (noxfile.py): the sdist, then a wheel built from it and installed into a fresh
# virtualenv for each Python, each tested outside the checkout. Only nox and the build tools go
# into .venv, from their lock; the sessions install from the locks in requirements/ too.
LOCKS := requirements
$(TOOLS): $(LOCKS)/tools.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --requirement $(LOCKS)/tools.txt
	touch $(TOOLS)

test: $(TOOLS)
	$(VENV)/bin/nox

# The locks, refreshed to the newest releases that resolve (universal: one file serves Python
# 3.10-3.13). Run `.venv/bin/nox -s newest` first: it tests those releases; then make test.
COMPILE := $(VENV)/bin/uv pip compile --quiet --upgrade
lock: $(TOOLS)
	$(COMPILE) --universal --python-version 3.10 $(LOCKS)/tools.in -o $(LOCKS)/tools.txt
	$(COMPILE) --universal --python-version 3.10 $(LOCKS)/build.in -o $(LOCKS)/build.txt
	$(COMPILE) --universal --python-version 3.10 setup.cfg --all-extras $(LOCKS)/test.in \
		-o $(LOCKS)/test.txt
	$(COMPILE) --python-version 3.10 setup.cfg --extra gunicorn --extra test \
		--constraint $(LOCKS)/floors.in --constraint $(LOCKS)/test.in -o $(LOCKS)/floors.txt

# A working copy for development: the package installed editable (its hot path compiled in
# place, rebuilt when a source changes), with the test and lint tools.
SOURCES := $(shell find channels_distributed -name '*.py' -o -name '*.pxd')

$(DEV): setup.cfg setup.py pyproject.toml $(SOURCES) $(LOCKS)/test.txt $(LOCKS)/build.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --constraint $(LOCKS)/test.txt pip
	PIP_CONSTRAINT=$(LOCKS)/build.txt $(PY) -m pip install --quiet \
		--constraint $(LOCKS)/test.txt -e '.[gunicorn,demo,test,dev]' channels_redis==4.3.0
	@# An extension left in place by an earlier build of a module no longer compiled would be
	@# imported instead of its source. compiled.py is read by path: importing the package could
	@# load such an extension first (and fail on it).
	$(PY) -c "import pathlib, runpy; c = runpy.run_path('channels_distributed/compiled.py'); \
	[p.unlink() for p in pathlib.Path('channels_distributed').rglob('*.so') \
	 if '.'.join(p.with_name(p.name.split('.')[0]).parts) not in c['COMPILED']]"
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
# bench-distributed, bench-scale and bench-server need nginx and wrk, bench-django wrk:
# apt-get install -y nginx wrk
bench: bench-layer bench-distributed bench-scale bench-server bench-django

bench-layer: $(DEV)
	PIP_CONSTRAINT=$(LOCKS)/build.txt $(PY) -m pip install --quiet --constraint $(LOCKS)/test.txt -e '.[bench]'
	$(PY) bench/layer.py

bench-distributed: $(DEV)
	PIP_CONSTRAINT=$(LOCKS)/build.txt $(PY) -m pip install --quiet --constraint $(LOCKS)/test.txt -e '.[bench]'
	$(PY) bench/distributed.py

bench-scale: $(DEV)
	$(PY) bench/scale.py

bench-server: $(DEV)
	PIP_CONSTRAINT=$(LOCKS)/build.txt $(PY) -m pip install --quiet --constraint $(LOCKS)/test.txt -e '.[bench]'
	$(PY) bench/server.py

bench-django: $(DEV)
	PIP_CONSTRAINT=$(LOCKS)/build.txt $(PY) -m pip install --quiet --constraint $(LOCKS)/test.txt -e '.[bench]'
	$(PY) bench/django_project.py

clean:
	rm -rf $(VENV) build dist *.egg-info
